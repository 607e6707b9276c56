"""``darkstack observe``: mock SDSS images and HI moment maps into ``observations.zarr`` (or
the phase-space and cluster maps of the other tasks)."""

from __future__ import annotations

from pathlib import Path

import click

from darkstack.cli.options import dask_options, override_option, rebuild_option


@click.command()
@click.option("--store", required=True, type=click.Path(path_type=Path), help="Store to observe.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML file of ObserveConfig fields.",
)
@click.option(
    "--kind",
    type=click.Choice(["images", "phase_space", "cluster_maps"]),
    default="images",
    show_default=True,
    help="images: SDSS + HI maps (observations.zarr); phase_space: stellar xy and rv maps of "
    "the dwarfs (phase_space.zarr; config: PhaseSpaceConfig); cluster_maps: Compton-y, X-ray and "
    "stellar maps with total-mass targets of the clusters (cluster_maps.zarr; config: "
    "ClusterMapsConfig).",
)
@override_option
@rebuild_option
@dask_options
def observe(
    store: Path,
    kind: str,
    config_path: Path | None,
    overrides: tuple[str, ...],
    rebuild: bool,
    dask_address: str | None,
    workers: int,
) -> None:
    """Mock SDSS ugriz images and HI moment maps for every galaxy and realisation.

    Samples that failed for an environmental reason (a missing cutout, a full disk) are
    retried by the next run; the exit code is 1 while any remain, or when none succeeded.
    """
    from darkstack.cli.build_report import finish_build
    from darkstack.cluster import dask_client
    from darkstack.config import load_config
    from darkstack.features.observe import ObserveConfig, run_observe
    from darkstack.store import OBSERVATIONS_ZARR, StoreLayout

    if kind == "phase_space":
        from darkstack.features.phase_space import PhaseSpaceConfig, build_phase_space

        settings = load_config(PhaseSpaceConfig, path=config_path, overrides=overrides)
        with dask_client(address=dask_address, workers=workers) as client:
            path = build_phase_space(settings, store=store, client=client)
        click.echo(f"phase-space maps: {path}")
        return
    if kind == "cluster_maps":
        from darkstack.features.cluster_observe import ClusterMapsConfig, build_cluster_maps

        maps_config = load_config(ClusterMapsConfig, path=config_path, overrides=overrides)
        with dask_client(address=dask_address, workers=workers) as client:
            path = build_cluster_maps(maps_config, store=store, client=client)
        click.echo(f"cluster maps: {path}")
        return
    config = load_config(ObserveConfig, path=config_path, overrides=overrides)
    with dask_client(address=dask_address, workers=workers) as client:
        summary = run_observe(config, store=store, client=client, rebuild=rebuild)
    click.echo(f"observations: {StoreLayout(summary.store).zarr(OBSERVATIONS_ZARR.name)}")
    finish_build(summary.report)
