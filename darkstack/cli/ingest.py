"""``darkstack ingest``: select galaxies, cut out their particles, compute targets."""

from __future__ import annotations

from pathlib import Path

import click

from darkstack.cli.options import dask_options, override_option, rebuild_option
from darkstack.ingest.sources import source_names


@click.command()
@click.option(
    "--sim",
    default=None,
    type=click.Path(path_type=Path),
    help="The simulation's basePath (its output/ folder), e.g. SIM/output; for --source local.",
)
@click.option(
    "--source",
    type=click.Choice(source_names()),
    default=None,
    help="Read --sim, a basePath on disk (local, the default), or the TNG web API (api: key "
    "from $TNG_API_KEY or api.key_file, simulation from api.simulation), or another "
    "registered source.",
)
@click.option("--snap", type=int, default=None, help="Snapshot number (default 99).")
@click.option(
    "--task",
    type=click.Choice(["profiles", "cusp_core", "cluster_mass"]),
    default="profiles",
    show_default=True,
    help="profiles: galaxy cutouts and enclosed masses (catalogs/galaxies.parquet); cusp_core: "
    "every subhalo's inner DM slope (catalogs/dwarfs.parquet; config: DwarfIngestConfig); "
    "cluster_mass: cluster particle cutouts within 3 R200c (catalogs/clusters.parquet; config: "
    "ClusterIngestConfig).",
)
@click.option("--store", required=True, type=click.Path(path_type=Path), help="Store to write.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML file of IngestConfig fields.",
)
@override_option
@rebuild_option
@dask_options
def ingest(
    sim: Path | None,
    source: str | None,
    snap: int | None,
    task: str,
    store: Path,
    config_path: Path | None,
    overrides: tuple[str, ...],
    rebuild: bool,
    dask_address: str | None,
    workers: int,
) -> None:
    """Select galaxies, cut out their particles and compute dark-matter targets.

    Galaxies that failed for an environmental reason (a full disk, an unreadable file) are
    retried by the next run; the exit code is 1 while any remain, or when none succeeded.
    """
    from darkstack.cli.build_report import finish_build
    from darkstack.cluster import dask_client
    from darkstack.config import load_config
    from darkstack.ingest.build import run_ingest
    from darkstack.ingest.config import IngestConfig
    from darkstack.store import GALAXIES_CATALOG, StoreLayout

    if task in ("cusp_core", "cluster_mass"):
        _ingest_zoom_task(task, sim, snap, store, config_path, overrides, dask_address, workers)
        return
    settings = [
        *overrides,
        *([f"snapshot={snap}"] if snap is not None else []),
        *([f"source={source}"] if source is not None else []),
    ]
    config = load_config(IngestConfig, path=config_path, overrides=settings)
    if config.source == "api":
        # The web API is rate-limited: its galaxies are fetched one after the other, here.
        summary = run_ingest(config, store=store, rebuild=rebuild)
    else:
        if sim is None and config.source == "local":
            raise click.UsageError("--sim is required when reading a local simulation")
        with dask_client(address=dask_address, workers=workers) as client:
            summary = run_ingest(config, sim=sim, store=store, client=client, rebuild=rebuild)
    click.echo(f"catalog: {StoreLayout(summary.store).catalog(GALAXIES_CATALOG.name)}")
    finish_build(summary.report)


def _ingest_zoom_task(
    task: str,
    sim: Path | None,
    snap: int | None,
    store: Path,
    config_path: Path | None,
    overrides: tuple[str, ...],
    dask_address: str | None,
    workers: int,
) -> None:
    """``ingest --task cusp_core|cluster_mass``: one catalog row per object, then a summary."""
    import pandas as pd

    from darkstack.cluster import dask_client
    from darkstack.config import load_config

    if sim is None:
        raise click.UsageError(f"--sim is required for --task {task}")
    settings = [*overrides, *([f"snapshot={snap}"] if snap is not None else [])]
    if task == "cusp_core":
        from darkstack.ingest.dwarfs import TARGET_COLUMN, DwarfIngestConfig, ingest_dwarfs

        dwarfs = load_config(DwarfIngestConfig, path=config_path, overrides=settings)
        with dask_client(address=dask_address, workers=workers) as client:
            path = ingest_dwarfs(dwarfs, sim=sim, store=store, client=client)
        rows = pd.read_parquet(path)
        ok = rows[rows["status"] == "ok"]
        error = ok[TARGET_COLUMN + "_error"]
        click.echo(
            f"measured {len(rows)} dwarfs, {len(ok)} ok; slope error median "
            f"{error.median():.3f}, max {error.max():.3f}"
        )
    else:
        from darkstack.ingest.clusters import ClusterIngestConfig, ingest_clusters

        clusters = load_config(ClusterIngestConfig, path=config_path, overrides=settings)
        with dask_client(address=dask_address, workers=workers) as client:
            path = ingest_clusters(clusters, sim=sim, store=store, client=client)
        rows = pd.read_parquet(path)
        click.echo(f"cut out {len(rows)} clusters, {int((rows['status'] == 'ok').sum())} ok")
    click.echo(f"catalog: {path}")
