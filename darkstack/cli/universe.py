"""``darkstack universe``: write a mock universe in IllustrisTNG's on-disk layout."""

from __future__ import annotations

from pathlib import Path

import click

from darkstack.cli.options import dask_options, override_option
from darkstack.config import load_config


@click.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Simulation root SIM; illustris_python's basePath is SIM/output.",
)
@click.option(
    "--preset",
    type=click.Choice(
        ["quick", "small", "paper", "dwarfs", "dwarfs-small", "clusters", "clusters-quick"]
    ),
    default="quick",
    show_default=True,
    help="quick: >=150 selectable centrals in about a minute; small: >=1000; paper: ~2000 at "
    "TNG100-1 resolution (a cluster job); dwarfs: a few isolated zoom-like dwarfs for the "
    "cusp_core task (dwarfs-small: 400); clusters: ~300 galaxy clusters for the cluster_mass "
    "task (clusters-quick: 6).",
)
@click.option("--seed", type=int, default=None, help="Random seed (default: the config's, 0).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML file of UniverseConfig fields, applied on top of the preset.",
)
@click.option(
    "--dark-twin",
    "dark_twin",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the gravity-only twin (PartType1 only, like TNG100-1-Dark) at this root, "
    "and SIM/postprocessing/subhalo_matching_to_dark.hdf5.",
)
@override_option
@click.option("--overwrite", is_flag=True, help="Replace a universe already at --out.")
@dask_options
def universe(
    out: Path,
    preset: str,
    seed: int | None,
    config_path: Path | None,
    overrides: tuple[str, ...],
    dark_twin: Path | None,
    overwrite: bool,
    dask_address: str | None,
    workers: int,
) -> None:
    """Write a mock universe (snapshot chunks, group catalog, offsets, truth.parquet)."""
    from darkstack.cluster import dask_client
    from darkstack.universe.build import build_universe
    from darkstack.universe.config import PRESETS, UniverseConfig
    from darkstack.universe.summary import summarise_simulation

    settings = [*overrides, *([f"seed={seed}"] if seed is not None else [])]
    if preset.startswith(("dwarfs", "clusters")):
        if dark_twin is not None:
            raise click.UsageError("--dark-twin needs a cosmological preset, not " + preset)
        _zoom_preset(preset, out, config_path, settings, overwrite, dask_address, workers)
        return
    config = load_config(
        UniverseConfig, path=config_path, preset=PRESETS[preset], overrides=settings
    )
    with dask_client(address=dask_address, workers=workers) as client:
        summary = build_universe(
            config, out, client=client, overwrite=overwrite, dark_twin=dark_twin
        )
    click.echo(
        f"wrote {summary.root} ({summary.n_snapshot_files} snapshot and "
        f"{summary.n_groupcat_files} group-catalog files); read back with illustris_python:"
    )
    for line in summarise_simulation(summary.root / "output", snapshot=config.snapshot).lines():
        click.echo(line)
    click.echo(
        f"basePath for illustris_python and `darkstack ingest --sim`: {summary.root / 'output'}"
    )
    if summary.twin is not None:
        twin = summary.twin
        click.echo(
            f"gravity-only twin: {twin.root / 'output'} ({twin.n_groups} groups, "
            f"{twin.n_subhalos} subhalos, {twin.n_particles} PartType1 particles of "
            f"{twin.particle_mass_msun:.4g} Msun); `darkstack fields --dark` reads it"
        )


def _zoom_preset(
    preset: str,
    out: Path,
    config_path: Path | None,
    settings: list[str],
    overwrite: bool,
    dask_address: str | None,
    workers: int,
) -> None:
    """The object-per-task presets (``dwarfs*``, ``clusters*``), which have no cosmic box."""
    from darkstack.cluster import dask_client

    if preset.startswith("dwarfs"):
        from darkstack.universe.dwarfs import DWARF_PRESETS, DwarfsConfig, build_dwarfs

        size = "small" if preset == "dwarfs-small" else "quick"
        dwarfs = load_config(
            DwarfsConfig, path=config_path, preset=DWARF_PRESETS[size], overrides=settings
        )
        with dask_client(address=dask_address, workers=workers) as client:
            built = build_dwarfs(dwarfs, out, client=client, overwrite=overwrite)
        click.echo(f"wrote {len(built)} dwarfs to {out}")
    else:
        from darkstack.universe.clusters.preset import (
            CLUSTER_PRESETS,
            ClustersConfig,
            build_clusters,
        )

        size = "quick" if preset == "clusters-quick" else "scaled"
        clusters = load_config(
            ClustersConfig, path=config_path, preset=CLUSTER_PRESETS[size], overrides=settings
        )
        with dask_client(address=dask_address, workers=workers) as client:
            drawn = build_clusters(clusters, out, client=client, overwrite=overwrite)
        click.echo(
            f"wrote {len(drawn)} clusters to {out} (truth: {out / 'catalogs/clusters.parquet'})"
        )
    click.echo(f"basePath for illustris_python and `darkstack ingest --sim`: {out / 'output'}")
