"""The shipped settings pass their own checks: every config's defaults, every preset the
package names, and the YAML examples of the docs (a check must not refuse what we ship)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from darkstack.cluster.settings import ClusterConfig, RaySlurmConfig, SlurmWorkersConfig
from darkstack.config import Checked, config_to_dict, from_mapping, load_config
from darkstack.evaluate.cusp_core import CuspCoreEvaluateConfig
from darkstack.evaluate.profiles.report import EvaluateConfig
from darkstack.evaluate.profiles.rotation_curve.config import RotationCurveConfig
from darkstack.features.cluster_observe import ClusterMapsConfig
from darkstack.features.fields.config import FieldsConfig, SpectraConfig
from darkstack.features.hi import HIConfig
from darkstack.features.observe import ObserveConfig
from darkstack.features.phase_space import PhaseSpaceConfig
from darkstack.features.photometry import PhotometryConfig
from darkstack.features.skirt import SkirtConfig
from darkstack.ingest.clusters import ClusterIngestConfig
from darkstack.ingest.config import IngestConfig
from darkstack.ingest.dwarfs import DwarfIngestConfig
from darkstack.train.models import ModelConfig, PaperCNNConfig, ResNet50Config
from darkstack.train.models.mdcnn import MDCNNConfig
from darkstack.train.tasks import get_task, task_names
from darkstack.train.tasks.cusp_core import CuspCoreModelConfig
from darkstack.universe.clusters.preset import CLUSTER_PRESETS, ClustersConfig
from darkstack.universe.config import PRESETS, UniverseConfig
from darkstack.universe.dwarfs import DWARF_PRESETS, DwarfsConfig

DOCS = Path(__file__).parents[2] / "docs"

#: Every stage's config that a command loads, by its defaults alone.
LOADED = [
    UniverseConfig,
    DwarfsConfig,
    ClustersConfig,
    IngestConfig,
    DwarfIngestConfig,
    ClusterIngestConfig,
    ObserveConfig,
    PhotometryConfig,
    HIConfig,
    SkirtConfig,
    PhaseSpaceConfig,
    ClusterMapsConfig,
    FieldsConfig,
    SpectraConfig,
    CuspCoreModelConfig,
    ModelConfig,
    MDCNNConfig,
    ClusterConfig,
    SlurmWorkersConfig,
    RaySlurmConfig,
    EvaluateConfig,
    CuspCoreEvaluateConfig,
    RotationCurveConfig,
]


def _presets() -> list[tuple[str, type, dict[str, Any]]]:
    cases = [(f"universe-{name}", UniverseConfig, values) for name, values in PRESETS.items()]
    cases += [(f"dwarfs-{name}", DwarfsConfig, values) for name, values in DWARF_PRESETS.items()]
    cases += [
        (f"clusters-{name}", ClustersConfig, values) for name, values in CLUSTER_PRESETS.items()
    ]
    for task_name in task_names():
        task = get_task(task_name)
        cases.append((f"train-{task_name}-default", task.config_type, {}))
        cases += [
            (f"train-{task_name}-{name}", task.config_type, dict(values))
            for name, values in task.presets.items()
        ]
    return cases


PRESET_CASES = _presets()


@pytest.mark.parametrize("cls", LOADED, ids=[cls.__name__ for cls in LOADED])
def test_the_defaults_validate_and_round_trip(cls: type) -> None:
    config = load_config(cls)
    assert isinstance(config, Checked)
    # The saved mapping builds the same config again: nothing the checks refuse is written.
    assert from_mapping(cls, config_to_dict(config)) == config


@pytest.mark.parametrize(
    ("cls", "values"),
    [(cls, values) for _, cls, values in PRESET_CASES],
    ids=[name for name, _, _ in PRESET_CASES],
)
def test_every_preset_validates(cls: type, values: dict[str, Any]) -> None:
    config = load_config(cls, preset=values)
    for key, value in values.items():
        held = getattr(config, key)
        if not isinstance(value, dict):
            assert held == (tuple(value) if isinstance(value, list) else value), key


def test_the_models_a_run_builds_validate() -> None:
    # Made in Python from a ModelConfig: each architecture at the size the paper uses.
    for architecture in ("A", "B", "C"):
        PaperCNNConfig(architecture=architecture, in_channels=8)  # type: ignore[arg-type]
    ResNet50Config(in_channels=8)
    fields = dataclasses.asdict(CuspCoreModelConfig())
    n_scalars = len(fields.pop("scalars"))
    MDCNNConfig(**fields, n_scalars=n_scalars, image_size=PhaseSpaceConfig().n_pixels)


#: The ``--cluster-config`` examples of docs/cluster.md.
CLUSTER_YAML = re.findall(r"```yaml\n(.*?)```", (DOCS / "cluster.md").read_text(), re.S)


@pytest.mark.parametrize("block", CLUSTER_YAML)
def test_the_cluster_yaml_of_the_docs_validates(block: str, tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(block)
    config = load_config(ClusterConfig, path=path)
    assert config_to_dict(config)["dask"]["slurm"]["walltime"] == "04:00:00"
