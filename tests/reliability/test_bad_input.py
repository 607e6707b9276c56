"""Bad input, case by case: one line naming the culprit, the exit code of its kind, and the
store's files untouched.

Every case runs the command line in-process (click's runner) against stores built once per
session: the tiny mock universe and its ingested store (``tests/conftest.py``), and a synthetic
observations store with a prepared run (``tests/train/conftest.py``). docs/reliability.md lists
the cases.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import zarr
from click.testing import CliRunner

from darkstack.cli import cli
from darkstack.cluster.ports import free_ports
from darkstack.config import load_config
from darkstack.store import StoreLayout
from darkstack.store.schema import VERSION_KEY
from darkstack.tng_layout import offsets_path, snapshot_path
from darkstack.train.loop import FitResult
from darkstack.train.run import prepare_run
from darkstack.train.tasks.profiles import TASK, ProfilesTrainConfig
from darkstack.train.worker import initial_model, save_model

_SYNTHETIC = Path(__file__).parents[1] / "train" / "conftest.py"
#: The run of the synthetic store whose model.pt is truncated.
RUN = "tiny"
#: The image size of the synthetic store (the model's must match).
IMAGE_SIZE = 96


def _write_synthetic_store(root: Path, *, n_galaxies: int) -> Path:
    spec = importlib.util.spec_from_file_location("synthetic_store", _SYNTHETIC)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_synthetic_store(  # type: ignore[no-any-return]
        root, n_galaxies=n_galaxies, n_realisations=1, image_size=IMAGE_SIZE
    )


@pytest.fixture(scope="session")
def observations_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six galaxies' observations and a prepared run whose model.pt is truncated."""
    store = _write_synthetic_store(tmp_path_factory.mktemp("obs") / "store", n_galaxies=6)
    config = load_config(
        ProfilesTrainConfig, overrides=[f"run={RUN}", f"model.image_size={IMAGE_SIZE}"]
    )
    paths = prepare_run(store, config)
    paths.model.write_bytes(b"PK\x03\x04 a model.pt cut short by a full disk")
    return store


@pytest.fixture(scope="session")
def two_galaxy_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Observations of two galaxies: too few for a train, validation and test split."""
    return _write_synthetic_store(tmp_path_factory.mktemp("two") / "store", n_galaxies=2)


@dataclass(frozen=True)
class Env:
    """The paths a case's command line is made of."""

    sim: Path  # basePath of the tiny universe (read only)
    store: Path  # its ingested store
    obs: Path  # the synthetic observations store
    two: Path  # a store of two galaxies
    tmp: Path  # this case's own folder
    port: int  # a local port nothing listens on


@dataclass(frozen=True)
class Case:
    """One bad input: the command line, the exit code, and what the error line must name."""

    id: str
    args: Callable[[Env], list[str]]
    exit_code: int
    names: Callable[[Env], tuple[str, ...]]
    prepare: Callable[[Env], None] | None = None
    #: Folders the command must not create (a stub run, a store).
    absent: Callable[[Env], tuple[Path, ...]] = lambda e: ()


def _broken_sim(e: Env) -> Path:
    """A copy of the tiny universe to break (its root is SIM, basePath SIM/output)."""
    root = e.tmp / "sim"
    if not root.exists():
        shutil.copytree(e.sim.parent, root)
    return root / "output"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _yaml(e: Env, text: str) -> None:
    (e.tmp / "config.yaml").write_text(text)


def _ingest(e: Env, *extra: str, sim: Path | None = None) -> list[str]:
    return ["ingest", "--sim", str(sim or e.sim), "--store", str(e.store), *extra]


def _catalog(e: Env) -> Path:
    return StoreLayout(e.store).catalog("galaxies")


def _observe(e: Env, setting: str, *extra: str) -> list[str]:
    return ["observe", "--store", str(e.store), "--set", setting, *extra]


def _old_format(e: Env, *, trained: bool = False, unversioned: bool = False) -> None:
    """A copy of the synthetic store whose observations.zarr says format 1 (or says nothing,
    as stores written before format versions); ``trained`` adds the run ``fresh`` with a
    model.pt, so evaluate reaches the observations."""
    store = e.tmp / "old"
    shutil.copytree(e.obs, store)
    if trained:
        config = load_config(
            ProfilesTrainConfig, overrides=["run=fresh", f"model.image_size={IMAGE_SIZE}"]
        )
        paths = prepare_run(store, config)
        model = initial_model(paths, task=TASK)
        result = FitResult(epochs=1, best_validation_loss=[1.0], stopped_early=False)
        save_model(paths, model, config=config, result=result, weights=torch.ones(1))
    attrs = zarr.open_group(_observations(store), mode="r+").attrs
    if unversioned:
        del attrs[VERSION_KEY]
    else:
        attrs[VERSION_KEY] = 1


def _old_observed(e: Env) -> None:
    """A copy of the ingested store holding format-1 observations."""
    _old_format(e)
    shutil.copytree(e.store, e.tmp / "ingested")
    shutil.copytree(_observations(e.tmp / "old"), _observations(e.tmp / "ingested"))


def _observations(store: Path) -> Path:
    return StoreLayout(store).zarr("observations")


def _rebuild_names(store: Path) -> tuple[str, ...]:
    return (
        f"{_observations(store)}: observations.zarr format version 1",
        "this darkstack reads format 2",
        f"`darkstack observe --store {store} --rebuild`",
    )


def _train(store: Path, *extra: str) -> list[str]:
    return ["train", "--store", str(store), "--set", f"model.image_size={IMAGE_SIZE}", *extra]


CASES = [
    # --- the simulation ---
    Case(
        "basepath-missing",
        lambda e: _ingest(e, sim=e.tmp / "nope"),
        2,
        lambda e: (f"--sim {e.tmp / 'nope'} does not exist",),
    ),
    Case(
        "basepath-is-the-sim-root",
        lambda e: _ingest(e, sim=e.sim.parent),
        2,
        lambda e: ("snapdir_099 not found", "did you mean --sim"),
    ),
    Case(
        "chunk-truncated",
        lambda e: _ingest(e, sim=_broken_sim(e)),
        2,
        lambda e: ("snap_099.0.hdf5", "not a readable HDF5 file"),
        prepare=lambda e: _truncate(snapshot_path(_broken_sim(e), 99, 0)),
    ),
    Case(
        "chunk-missing",
        lambda e: _ingest(e, sim=_broken_sim(e)),
        2,
        lambda e: ("snap_099.0.hdf5",),
        prepare=lambda e: snapshot_path(_broken_sim(e), 99, 0).unlink(),
    ),
    Case(
        "offsets-missing",
        lambda e: _ingest(e, sim=_broken_sim(e)),
        2,
        lambda e: ("has no offsets file",),
        prepare=lambda e: offsets_path(_broken_sim(e), 99).unlink(),
    ),
    # --- settings: YAML files and --set ---
    Case(
        "yaml-key-typo",
        lambda e: _ingest(e, "--config", str(e.tmp / "config.yaml")),
        2,
        lambda e: (str(e.tmp / "config.yaml"), "unknown key targest; did you mean targets?"),
        prepare=lambda e: _yaml(e, "targest:\n  r_max_kpc: 50\n"),
    ),
    Case(
        "yaml-wrong-type",
        lambda e: _ingest(e, "--config", str(e.tmp / "config.yaml")),
        2,
        lambda e: ("galaxies_per_task='many'; expected int",),
        prepare=lambda e: _yaml(e, "galaxies_per_task: many\n"),
    ),
    Case(
        "yaml-syntax",
        lambda e: _ingest(e, "--config", str(e.tmp / "config.yaml")),
        2,
        lambda e: (f"config file {e.tmp / 'config.yaml'} is not valid YAML at line 2",),
        prepare=lambda e: _yaml(e, "targets:\n\tr_max_kpc: 50\n"),
    ),
    Case(
        "set-unknown-key",
        lambda e: _ingest(e, "--set", "cutout.radius_kpc=50"),
        2,
        lambda e: ("unknown key cutout.radius_kpc",),
    ),
    Case(
        "set-nested-key-at-top",
        lambda e: _ingest(e, "--set", "r_max_kpc=50"),
        2,
        lambda e: ("unknown key r_max_kpc; did you mean targets.r_max_kpc?",),
    ),
    Case(
        "targets-beyond-cutout",
        lambda e: _ingest(e, "--set", "targets.r_max_kpc=300"),
        2,
        lambda e: ("targets.r_max_kpc=300", "cutout radius 100 kpc", "cutout.min_radius_kpc"),
    ),
    Case(
        "cutout-radius-negative",
        lambda e: _ingest(e, "--set", "cutout.min_radius_kpc=-50"),
        2,
        lambda e: ("cutout.min_radius_kpc=-50; expected a value > 0",),
    ),
    Case(
        "galaxies-per-task-zero",
        lambda e: _ingest(e, "--set", "galaxies_per_task=0"),
        2,
        lambda e: ("galaxies_per_task=0; expected a value >= 1",),
    ),
    Case(
        "scatter-negative",
        lambda e: [
            "universe",
            "--out",
            str(e.tmp / "u"),
            "--set",
            "concentration_scatter_dex=-0.5",
        ],
        2,
        lambda e: ("concentration_scatter_dex=-0.5; expected a value >= 0",),
        absent=lambda e: (e.tmp / "u",),
    ),
    Case(
        "model-name-typo",
        lambda e: ["universe", "--out", str(e.tmp / "u"), "--set", "mass_function_model=tinkr08"],
        2,
        lambda e: ("mass_function_model='tinkr08'", "'tinker08'", "did you mean 'tinker08'?"),
        absent=lambda e: (e.tmp / "u",),
    ),
    Case(
        "split-fractions",
        lambda e: _train(e.obs, "--no-ray", "--set", "data.split_fractions=[0.5,0.5,0.5]"),
        2,
        lambda e: ("data.split_fractions=(0.5, 0.5, 0.5)", "summing to 1"),
    ),
    Case(
        "too-few-galaxies-to-split",
        lambda e: _train(e.two, "--no-ray", "--set", "run=split"),
        2,
        lambda e: (f"cannot split {e.two} by subhalo_id", "2 groups", "need at least 3"),
        absent=lambda e: (StoreLayout(e.two).run("split").root,),
    ),
    Case(
        "device-without-cuda",
        lambda e: _train(e.obs, "--no-ray", "--set", "device=cuda", "--set", "run=gpu"),
        2,
        lambda e: ("device='cuda'", "use device=cpu"),
        absent=lambda e: (StoreLayout(e.obs).run("gpu").root,),
    ),
    # --- every stage's settings, through its own command (docs/settings.md) ---
    Case(
        "observe-psf-negative",
        lambda e: _observe(e, "photometry.psf_fwhm_arcsec=[1.53,1.44,-1.32,1.26,1.29]"),
        2,
        lambda e: ("photometry.psf_fwhm_arcsec=(1.53, 1.44, -1.32, 1.26, 1.29)", ">= 0"),
    ),
    Case(
        "observe-hi-beam-zero",
        lambda e: _observe(e, "hi.beam_fwhm_arcsec=0"),
        2,
        lambda e: ("hi.beam_fwhm_arcsec=0; expected a value > 0",),
    ),
    Case(
        "observe-hi-noise-negative",
        lambda e: _observe(e, "hi.noise_jy_per_beam=-1e-4"),
        2,
        lambda e: ("hi.noise_jy_per_beam=-0.0001; expected a value >= 0",),
    ),
    Case(
        "observe-hi-grid-differs",
        lambda e: _observe(e, "hi.n_pixels=64"),
        2,
        lambda e: ("hi.n_pixels=64; expected photometry.n_pixels=128 (the images and the HI maps",),
    ),
    Case(
        "observe-skirt-wavelengths",
        lambda e: _observe(e, "skirt.wavelength_max_um=0.005"),
        2,
        lambda e: ("skirt.wavelength_max_um=0.005; expected > wavelength_min_um=0.01",),
    ),
    Case(
        "observe-phase-space-percentile",
        lambda e: _observe(e, "velocity_percentile=0", "--kind", "phase_space"),
        2,
        lambda e: ("velocity_percentile=0; expected a value > 0 and <= 100",),
    ),
    Case(
        "fields-grid-not-chunked",
        lambda e: ["fields", "--sim", str(e.sim), "--store", str(e.tmp / "f"), "--grid", "96"],
        2,
        lambda e: ("grid=96; expected a multiple of the zarr chunk 64",),
        absent=lambda e: (e.tmp / "f",),
    ),
    Case(
        "spectra-triangle-unordered",
        lambda e: [
            "spectra",
            "--store",
            str(e.store),
            "--field",
            "hydro_dm_mass",
            "--stat",
            "bk",
            "--set",
            "triangles=[[4,3]]",
        ],
        2,
        lambda e: ("triangles=((4.0, 3.0),); expected (k1, k2) pairs", "0 < k1 <= k2"),
    ),
    Case(
        "evaluate-walkers-odd",
        lambda e: [
            "evaluate",
            "--store",
            str(e.obs),
            "--run",
            RUN,
            "--set",
            "rotation_curve.n_walkers=11",
        ],
        2,
        lambda e: ("rotation_curve.n_walkers=11; expected an even number",),
    ),
    Case(
        "evaluate-split-name",
        lambda e: ["evaluate", "--store", str(e.obs), "--run", RUN, "--set", "split=tset"],
        2,
        lambda e: ("split='tset'", "did you mean 'test'?"),
    ),
    Case(
        "evaluate-device-without-cuda",
        lambda e: ["evaluate", "--store", str(e.obs), "--run", RUN, "--set", "device=cuda"],
        2,
        lambda e: ("device='cuda'", "use device=cpu"),
    ),
    Case(
        "cusp-core-dropout-one",
        lambda e: [
            "train",
            "--task",
            "cusp_core",
            "--store",
            str(e.obs),
            "--no-ray",
            "--set",
            "model.dropout=1",
            "--set",
            "run=drop",
        ],
        2,
        lambda e: ("model.dropout=1; expected a value >= 0 and < 1",),
        absent=lambda e: (StoreLayout(e.obs).run("drop").root,),
    ),
    Case(
        "dwarfs-slope-positive",
        lambda e: [
            "universe",
            "--preset",
            "dwarfs",
            "--out",
            str(e.tmp / "u"),
            "--set",
            "slope_range=[-1,0.5]",
        ],
        2,
        lambda e: ("slope_range=(-1.0, 0.5); expected every item <= 0",),
        absent=lambda e: (e.tmp / "u",),
    ),
    Case(
        "clusters-gas-fraction-one",
        lambda e: [
            "universe",
            "--preset",
            "clusters-quick",
            "--out",
            str(e.tmp / "u"),
            "--set",
            "gas_particle_fraction=1",
        ],
        2,
        lambda e: ("gas_particle_fraction=1", "< 1"),
        absent=lambda e: (e.tmp / "u",),
    ),
    Case(
        "dwarf-ingest-shells",
        lambda e: _ingest(e, "--task", "cusp_core", "--set", "n_shells=2"),
        2,
        lambda e: ("n_shells=2; expected a value >= 3",),
    ),
    Case(
        "submit-walltime-format",
        lambda e: [
            "submit",
            "build",
            "ingest",
            "--sim",
            str(e.sim),
            "--store",
            str(e.store),
            "--cluster-set",
            "dask.slurm.walltime=1h",
        ],
        2,
        lambda e: ("dask.slurm.walltime='1h'; expected a positive SLURM time",),
    ),
    Case(
        "submit-processes-exceed-cores",
        lambda e: [
            "submit",
            "build",
            "ingest",
            "--sim",
            str(e.sim),
            "--store",
            str(e.store),
            "--cluster-set",
            "dask.slurm.processes=4",
        ],
        2,
        lambda e: ("dask.slurm.processes=4; expected <= cores=1",),
    ),
    Case(
        "slurm-script-memory",
        lambda e: [
            "cluster",
            "slurm-script",
            "--kind",
            "ray",
            "--cluster-set",
            "ray.slurm.memory=lots",
        ],
        2,
        lambda e: ("ray.slurm.memory='lots'; expected a size such as 16GB",),
    ),
    # --- the store ---
    Case(
        "query-drop",
        lambda e: ["query", "--store", str(e.store), "DROP VIEW galaxies"],
        2,
        lambda e: ("DROP statements are refused",),
    ),
    Case(
        "query-copy",
        lambda e: ["query", "--store", str(e.store), "COPY galaxies TO 'x.csv'"],
        2,
        lambda e: ("COPY statements are refused",),
    ),
    Case(
        "query-two-statements",
        lambda e: ["query", "--store", str(e.store), "SELECT 1; SELECT 2"],
        2,
        lambda e: ("one statement at a time",),
    ),
    Case(
        "query-unknown-table",
        lambda e: ["query", "--store", str(e.store), "SELECT * FROM halos"],
        2,
        lambda e: ("query failed", "halos"),
    ),
    Case(
        "query-output-in-store",
        lambda e: ["query", "--store", str(e.store), "--output", str(_catalog(e)), "--force", "1"],
        2,
        lambda e: ("is inside the store", "query never writes the store"),
    ),
    Case(
        "store-missing",
        lambda e: ["query", "--store", str(e.tmp / "nope"), "SELECT 1"],
        2,
        lambda e: (f"--store {e.tmp / 'nope'} does not exist",),
        absent=lambda e: (e.tmp / "nope",),
    ),
    Case(
        "store-without-observations",
        lambda e: _train(e.tmp / "nope", "--no-ray"),
        2,
        lambda e: (f"{e.tmp / 'nope' / 'observations.zarr'} does not exist", "darkstack observe"),
        absent=lambda e: (e.tmp / "nope",),
    ),
    Case(
        "observations-old-format-train",
        lambda e: _train(e.tmp / "old", "--no-ray", "--set", "run=fresh"),
        2,
        lambda e: _rebuild_names(e.tmp / "old"),
        prepare=lambda e: _old_format(e),
        absent=lambda e: (StoreLayout(e.tmp / "old").run("fresh").root,),
    ),
    Case(
        "observations-unversioned-evaluate",
        lambda e: ["evaluate", "--store", str(e.tmp / "old"), "--run", "fresh"],
        2,
        lambda e: _rebuild_names(e.tmp / "old"),
        prepare=lambda e: _old_format(e, trained=True, unversioned=True),
    ),
    Case(
        "observations-old-format-observe",
        lambda e: ["observe", "--store", str(e.tmp / "ingested")],
        2,
        lambda e: _rebuild_names(e.tmp / "ingested"),
        prepare=lambda e: _old_observed(e),
    ),
    Case(
        "run-missing",
        lambda e: ["evaluate", "--store", str(e.obs), "--run", "nope"],
        2,
        lambda e: ("no run 'nope'", f"runs there: {RUN}"),
    ),
    Case(
        "checkpoint-truncated",
        lambda e: ["evaluate", "--store", str(e.obs), "--run", RUN],
        2,
        lambda e: (f"{StoreLayout(e.obs).run(RUN).model} is truncated or not a torch file",),
    ),
    # --- clusters: a dead address fails at once (refused) or within connect_timeout_s ---
    Case(
        "dask-address-dead",
        lambda e: _ingest(e, "--dask-address", f"tcp://127.0.0.1:{e.port}"),
        1,
        lambda e: (f"no Dask scheduler answered at tcp://127.0.0.1:{e.port}",),
    ),
    Case(
        "ray-address-dead",
        lambda e: _train(e.obs, "--ray-address", f"127.0.0.1:{e.port}", "--set", "run=ray"),
        1,
        lambda e: (f"no Ray cluster answered at 127.0.0.1:{e.port}",),
        absent=lambda e: (StoreLayout(e.obs).run("ray").root,),
    ),
]


def _hashes(*roots: Path) -> dict[Path, str]:
    return {
        path: hashlib.sha256(path.read_bytes()).hexdigest()
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_naming_it_and_leaves_the_store_alone(
    case: Case,
    tiny_sim: Path,
    tiny_ingested_store: Path,
    observations_store: Path,
    two_galaxy_store: Path,
    tmp_path: Path,
) -> None:
    (port,) = free_ports(1)
    env = Env(
        sim=tiny_sim,
        store=tiny_ingested_store,
        obs=observations_store,
        two=two_galaxy_store,
        tmp=tmp_path,
        port=port,
    )
    if case.prepare is not None:
        case.prepare(env)
    stores = (env.sim.parent, env.store, env.obs, env.two)
    before = _hashes(*stores)
    started = time.monotonic()
    result = CliRunner().invoke(cli, case.args(env), obj={})
    elapsed_s = time.monotonic() - started

    assert result.exit_code == case.exit_code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("darkstack: error: "), lines[0]
    for name in case.names(env):
        assert name in lines[0], lines[0]
    assert result.stdout == ""
    assert _hashes(*stores) == before
    for folder in case.absent(env):
        assert not folder.exists(), folder
    # Everything is refused before work starts (the hashes above); this bound only catches a
    # hang or a retry loop, and is loose so that a loaded CI machine cannot fail it.
    assert elapsed_s < 60.0


def test_a_silent_scheduler_fails_within_the_connect_timeout(
    tiny_sim: Path, tiny_ingested_store: Path
) -> None:
    # Something listens but never speaks Dask: the socket connects, the client waits.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        before = _hashes(tiny_ingested_store)
        started = time.monotonic()
        result = CliRunner().invoke(
            cli,
            ["submit", "build", "ingest", "--sim", str(tiny_sim), "--store",
             str(tiny_ingested_store), "--dask-address", address,
             "--cluster-set", "dask.connect_timeout_s=1.5"],
            obj={},
        )  # fmt: skip
        elapsed_s = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"darkstack: error: no Dask scheduler answered at {address} within 1.5 s (expected a "
        "running `dask scheduler`; dask.connect_timeout_s sets the wait): "
        + result.stderr.split("sets the wait): ", 1)[1].strip()
    ]
    # It waited the configured 1.5 s (the message names it); the upper bound only catches a hang.
    assert 1.5 <= elapsed_s < 60.0
    assert _hashes(tiny_ingested_store) == before
