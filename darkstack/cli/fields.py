"""``darkstack fields`` and ``darkstack spectra``: voxel fields and their statistics."""

from __future__ import annotations

from pathlib import Path

import click

from darkstack.cli.options import dask_options, override_option, rebuild_option

_STATISTICS = ("pk", "xpk", "bk", "pdf")


@click.command()
@click.option(
    "--sim",
    required=True,
    type=click.Path(path_type=Path),
    help="basePath (output/ folder) of the hydro run, e.g. SIM/output.",
)
@click.option(
    "--dark",
    default=None,
    type=click.Path(path_type=Path),
    help="basePath of its gravity-only twin; without it the dark_* fields are not built.",
)
@click.option("--store", required=True, type=click.Path(path_type=Path), help="Store to write.")
@click.option("--grid", type=click.IntRange(min=1), default=None, help="Voxels per side.")
@click.option(
    "--scheme",
    type=click.Choice(["ngp", "cic", "tsc"]),
    default=None,
    help="Mass-assignment scheme (default cic).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML file of FieldsConfig fields.",
)
@rebuild_option
@override_option
@dask_options
def fields(
    sim: Path,
    dark: Path | None,
    store: Path,
    grid: int | None,
    scheme: str | None,
    config_path: Path | None,
    rebuild: bool,
    overrides: tuple[str, ...],
    dask_address: str | None,
    workers: int,
) -> None:
    """Deposit particles and subhalos onto voxel grids: STORE/fields.zarr (Msun per voxel).

    Fields: dark_dm_mass and dark_subhalo_mass of the gravity-only run (with --dark);
    hydro_dm_mass, hydro_stellar_mass and hydro_stellar_mass_subhalo of the hydro run.
    """
    from darkstack.cli.build_report import finish_build
    from darkstack.cluster import dask_client
    from darkstack.config import dump_config, load_config
    from darkstack.features.fields.build import run_fields
    from darkstack.features.fields.config import FieldsConfig
    from darkstack.store import StoreLayout

    settings = [
        *overrides,
        *([f"grid={grid}"] if grid is not None else []),
        *([f"scheme={scheme}"] if scheme is not None else []),
    ]
    config = load_config(FieldsConfig, path=config_path, overrides=settings)
    with dask_client(address=dask_address, workers=workers) as client:
        summary = run_fields(
            config, sim=sim, dark=dark, store=store, client=client, rebuild=rebuild
        )
    dump_config(config, StoreLayout(store).fields_config)
    click.echo(
        f"fields {', '.join(summary.fields)} on a {config.grid}^3 grid ({config.scheme}, "
        f"{summary.n_tiles} tiles each): {summary.path}"
    )
    finish_build(summary.report)


@click.command()
@click.option("--store", required=True, type=click.Path(path_type=Path), help="Store to read.")
@click.option("--field", "field_name", required=True, help="Field of STORE/fields.zarr.")
@click.option("--cross", default=None, help="Second field, for --stat xpk.")
@click.option(
    "--region",
    default=None,
    metavar="x0:x1,y0:y1,z0:z1",
    help="A cubic sub-grid (voxel index ranges, half-open), treated as periodic.",
)
@click.option("--stat", "statistic", required=True, type=click.Choice(_STATISTICS))
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML file of SpectraConfig fields.",
)
@override_option
@dask_options
def spectra(
    store: Path,
    field_name: str,
    cross: str | None,
    region: str | None,
    statistic: str,
    config_path: Path | None,
    overrides: tuple[str, ...],
    dask_address: str | None,
    workers: int,
) -> None:
    """Power spectrum, cross-power, bispectrum or PDF of a field: STORE/catalogs/spectra/.

    P(k) and B(k) are in h/Mpc units (k in h/Mpc, P in (Mpc/h)^3), the one exception to
    physical units, as the fields' literature quotes them.
    """
    from darkstack.cluster import dask_client
    from darkstack.config import load_config
    from darkstack.features.fields.config import SpectraConfig
    from darkstack.features.fields.spectra import run_spectra

    config = load_config(SpectraConfig, path=config_path, overrides=overrides)
    if statistic == "xpk" and cross is None:
        raise click.UsageError("--stat xpk needs --cross G, the second field")
    with dask_client(address=dask_address, workers=workers) as client:
        result = run_spectra(
            config,
            store=store,
            field=field_name,
            cross=cross,
            region=region,
            statistic=statistic,
            client=client,
        )
    click.echo(result.summary())
    click.echo(f"catalog: {result.path}")
