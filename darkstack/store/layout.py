"""Where everything lives in a store: the one module that spells a store path.

::

    STORE/
      catalogs/<name>.parquet          a catalog written whole (galaxies, observations, ...)
      catalogs/<name>/<key>=<value>/   a partitioned catalog (predictions, spectra): one
          <utc>-<uuid>.parquet         file per write, never rewritten
      cutouts/subhalo_NNNNNNNN.hdf5    one galaxy's particles (+ cutouts/.work/, ingest's scratch)
      cutouts/group_NNNNNNNN.hdf5      one cluster's particles (``ingest --task cluster_mass``)
      cubes/subhalo_NNNNNNNN_rR.fits   HI cubes kept by ``observe`` on request
      skirt/sample_NNNNNNNN/           SKIRT's working folders (``photometry_backend=skirt``)
      <name>.zarr                      a zarr dataset (observations; fields, phase_space,
                                       cluster_maps to come)
      <name>.work/                     its builder's completion records (observations.work/:
                                       one JSON per sample; fields.work/: buckets and tiles)
      ingest.yaml, observe.yaml,       the resolved config of the last build of each
      fields.yaml
      observations_preview.png         ``darkstack demo``'s look at a few views
      runs/<run>/                      one training run (:class:`RunPaths`)

Names of datasets and catalogs are closed lists (:data:`ZARR_DATASETS`, :data:`CATALOGS`): a
new dataset is added here, with its schema in :mod:`darkstack.store.schema`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Zarr datasets of a store, each ``STORE/<name>.zarr``.
ZARR_DATASETS = ("observations", "fields", "phase_space", "cluster_maps")
#: Catalogs written whole, each ``STORE/catalogs/<name>.parquet``.
CATALOGS = ("galaxies", "observations", "dwarfs", "clusters", "cluster_observables")
#: Catalogs that grow by appending one file per write, each ``STORE/catalogs/<name>/``.
PARTITIONED_CATALOGS = ("predictions", "spectra")


def check_run_name(name: str) -> str:
    """``name`` if it can name a run's folder, else a ValueError saying what is expected."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"run {name!r}: expected a plain directory name")
    return name


def _known(name: str, names: tuple[str, ...], kind: str) -> str:
    if name not in names:
        raise ValueError(
            f"{name!r} is not a {kind} of the store; expected one of {list(names)} "
            "(new ones are declared in darkstack/store/layout.py)"
        )
    return name


@dataclass(frozen=True)
class RunPaths:
    """Files of one training run, ``STORE/runs/<run>/``.

    ``config.yaml`` (the resolved TrainConfig), ``split.json`` (subhalo IDs and sample indices
    per split), ``normalisation.json``, ``checkpoints/`` (the latest epoch's full state and Ray
    Train's copies), ``metrics.jsonl`` (one line per epoch), ``model.pt`` (each member's best
    weights), ``report/`` (written by ``darkstack evaluate``) and ``ray/`` (Ray Train's
    experiment folder).
    """

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def split(self) -> Path:
        return self.root / "split.json"

    @property
    def normalisation(self) -> Path:
        return self.root / "normalisation.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def model(self) -> Path:
        return self.root / "model.pt"

    @property
    def calibration(self) -> Path:
        """Width factors of the predictive, fitted on the validation split (``calibration``)."""
        return self.root / "calibration.json"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def test_cube(self) -> Path:
        """dm2gal's painted test cube (``train/tasks/dm2gal/paint.py``)."""
        return self.root / "test_cube.zarr"

    @property
    def ray(self) -> Path:
        """Ray Train's own experiment folder (its persisted checkpoint copies)."""
        return self.root / "ray"


@dataclass(frozen=True)
class StoreLayout:
    """The paths of one store; nothing is created or read.

    Parameters
    ----------
    root : path-like
        The store folder (``STORE``).
    """

    root: Path

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", Path(root))

    # Catalogs -------------------------------------------------------------------------------
    @property
    def catalogs(self) -> Path:
        """The folder of every parquet catalog; ``darkstack query`` sees each as a table."""
        return self.root / "catalogs"

    def catalog(self, name: str) -> Path:
        """A catalog: ``catalogs/<name>.parquet``, or the folder of a partitioned one."""
        if name in PARTITIONED_CATALOGS:
            return self.catalogs / name
        return self.catalogs / f"{_known(name, CATALOGS, 'catalog')}.parquet"

    def legacy_catalog(self, name: str) -> Path:
        """The single file a partitioned catalog was before it was partitioned."""
        return (
            self.catalogs / f"{_known(name, PARTITIONED_CATALOGS, 'partitioned catalog')}.parquet"
        )

    # Zarr datasets ----------------------------------------------------------------------------
    def zarr(self, name: str) -> Path:
        """A zarr dataset, ``<name>.zarr``."""
        return self.root / f"{_known(name, ZARR_DATASETS, 'zarr dataset')}.zarr"

    def work(self, name: str) -> Path:
        """The completion records of a zarr dataset's build, ``<name>.work/``."""
        return self.root / f"{_known(name, ZARR_DATASETS, 'zarr dataset')}.work"

    # Particles and by-products of observe -----------------------------------------------------
    @property
    def cutouts(self) -> Path:
        return self.root / "cutouts"

    @property
    def cutouts_work(self) -> Path:
        """Ingest's scratch: per-chunk particle fragments, removed after a build."""
        return self.cutouts / ".work"

    def cutout(self, subhalo_id: int) -> Path:
        """One galaxy's particles."""
        return self.cutouts / f"subhalo_{int(subhalo_id):08d}.hdf5"

    def cluster_cutout(self, group_id: int) -> Path:
        """One cluster's particles within ``extent_r200`` R200c (``ingest --task cluster_mass``)."""
        return self.cutouts / f"group_{int(group_id):08d}.hdf5"

    def hi_cube(self, subhalo_id: int, realisation: int) -> Path:
        """An HI cube kept as FITS (``ObserveConfig.keep_cube_subhalos``)."""
        return self.root / "cubes" / f"subhalo_{int(subhalo_id):08d}_r{int(realisation)}.fits"

    def skirt_run(self, sample: int) -> Path:
        """SKIRT's working folder for one sample."""
        return self.root / "skirt" / f"sample_{int(sample):08d}"

    @property
    def preview(self) -> Path:
        """A PNG of a few observed views, for people to look at."""
        return self.root / "observations_preview.png"

    # Configs of the builds --------------------------------------------------------------------
    @property
    def ingest_config(self) -> Path:
        return self.root / "ingest.yaml"

    @property
    def observe_config(self) -> Path:
        return self.root / "observe.yaml"

    @property
    def fields_config(self) -> Path:
        return self.root / "fields.yaml"

    # Training runs ----------------------------------------------------------------------------
    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run(self, name: str) -> RunPaths:
        """The folder of run ``name`` (a plain directory name)."""
        return RunPaths(self.runs / check_run_name(name))
