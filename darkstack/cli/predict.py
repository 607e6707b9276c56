"""``darkstack predict``: apply a trained cusp_core network to a user's star table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from darkstack.evaluate.posterior import PosteriorSummary


@click.command()
@click.option("--store", required=True, type=click.Path(path_type=Path), help="Store of the run.")
@click.option(
    "--run",
    "runs",
    required=True,
    multiple=True,
    help=(
        "Run name (a folder of STORE/runs). Repeat it (the folds of a cross-validation, say) "
        "to average their calibrated posteriors, each run weighted equally."
    ),
)
@click.option(
    "--task",
    type=click.Choice(["cusp_core"]),
    default="cusp_core",
    show_default=True,
    help="The task whose network is applied.",
)
@click.option(
    "--stars",
    required=True,
    type=click.Path(path_type=Path),
    help=(
        "CSV, parquet or FITS table: ra_deg, dec_deg, v_los_kms [, v_err_kms, p_member]. "
        "Errors are brought to the training maps' velocity_error_kms; larger ones are refused."
    ),
)
@click.option("--distance-kpc", required=True, type=float, help="Distance to the galaxy.")
@click.option(
    "--center",
    nargs=2,
    type=float,
    default=None,
    metavar="RA DEC",
    help="Centre in degrees (default: the members' weighted mean position).",
)
@click.option(
    "--r-half-kpc",
    type=float,
    default=None,
    help="Projected half-light radius (default: the members' weighted median radius).",
)
@click.option("--ellipticity", type=float, default=0.0, show_default=True, help="1 - b/a.")
@click.option(
    "--position-angle",
    type=float,
    default=0.0,
    show_default=True,
    help="Of the major axis, degrees east of north.",
)
@click.option(
    "--v-sys-kms", type=float, default=None, help="Systemic velocity (default: weighted median)."
)
@click.option(
    "--stellar-mass-msun",
    type=float,
    default=None,
    help="The galaxy's stellar mass, for a network trained with it (model.scalars).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Prefix of the posterior table (.csv) and figure (.png); default: next to --stars.",
)
@click.option("--passes", type=int, default=100, show_default=True, help="MC-dropout passes.")
def predict(
    store: Path,
    runs: tuple[str, ...],
    task: str,
    stars: Path,
    distance_kpc: float,
    center: tuple[float, float] | None,
    r_half_kpc: float | None,
    ellipticity: float,
    position_angle: float,
    v_sys_kms: float | None,
    stellar_mass_msun: float | None,
    out: Path | None,
    passes: int,
) -> None:
    """Posterior of the inner DM slope at 150 pc from a star table; the last line is
    ``mode M (68%: LO to HI)``."""
    import json

    import numpy as np
    import torch

    from darkstack.config import load_config
    from darkstack.evaluate.posterior import summarise
    from darkstack.features.phase_space import PhaseSpaceConfig
    from darkstack.features.star_catalog import (
        StarTableError,
        read_star_table,
        star_maps,
        star_scalars,
    )
    from darkstack.store import PHASE_SPACE_ZARR, StoreLayout
    from darkstack.train.run import load_run_config
    from darkstack.train.tasks import get_task
    from darkstack.train.tasks.cusp_core import (
        SLOPE_GRID,
        CuspCoreModel,
        CuspCoreTrainConfig,
        PosteriorCalibration,
        pack_inputs,
    )
    from darkstack.train.worker import load_trained

    layout = StoreLayout(store)
    attrs = PHASE_SPACE_ZARR.check(layout.zarr(PHASE_SPACE_ZARR.name)).attrs
    config = load_config(PhaseSpaceConfig, preset=json.loads(attrs["config"]))
    try:
        table = read_star_table(stars)
        maps, assumed = star_maps(
            table,
            source=str(stars),
            distance_kpc=distance_kpc,
            config=config,
            min_stars=config.n_stars,
            centre_deg=center,
            r_half_kpc=r_half_kpc,
            ellipticity=ellipticity,
            position_angle_deg=position_angle,
            v_sys_kms=v_sys_kms,
        )
        # The task's config type: the --task choice is cusp_core.
        run_configs: list[CuspCoreTrainConfig] = [
            load_run_config(layout.run(run), task=get_task(task)) for run in runs
        ]
        scalars = [
            star_scalars(
                run_config.model.scalars,
                assumed=assumed,
                stellar_mass_msun=stellar_mass_msun,
                source=str(stars),
            )
            for run_config in run_configs
        ]
    except StarTableError as error:
        raise click.ClickException(str(error)) from None
    posteriors = []
    for run, run_scalars in zip(runs, scalars, strict=True):
        model = load_trained(layout.run(run), task=get_task(task))
        if not isinstance(model, CuspCoreModel):
            raise click.ClickException(f"run {run} is not a cusp_core run")
        # Seeded per run, so a run's posterior in an average is the one it gives alone.
        torch.manual_seed(0)
        row = torch.from_numpy(pack_inputs(maps[None], run_scalars[None]))
        density, _ = model.posterior(row, n_passes=passes)
        calibration = PosteriorCalibration.load(layout.run(run).calibration)
        if calibration is not None:
            density = calibration.apply(density)
        posteriors.append(density[0] / np.trapezoid(density[0], SLOPE_GRID))
    posterior = np.mean(posteriors, axis=0)
    summary = summarise(SLOPE_GRID, posterior[None])
    prefix = out or stars.with_suffix("")
    table_path = Path(f"{prefix}.posterior.csv")
    table_path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(
        table_path,
        np.column_stack([SLOPE_GRID, posterior]),
        delimiter=",",
        header="dm_log_slope_150pc,density",
        comments="",
    )
    _figure(Path(f"{prefix}.posterior.png"), posterior, summary)
    click.echo(
        "assumed: "
        + ", ".join(f"{key} {value:.4g}" for key, value in assumed.items())
        + f"; posterior: {table_path}"
    )
    click.echo(
        f"mode {summary.mode[0]:.2f} (68%: {summary.lower68[0]:.2f} to {summary.upper68[0]:.2f})"
    )


def _figure(path: Path, posterior: NDArray[np.float64], summary: PosteriorSummary) -> None:
    from darkstack.plotting import pyplot
    from darkstack.train.tasks.cusp_core import SLOPE_GRID

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(SLOPE_GRID, posterior)
    ax.axvline(summary.mode[0], color="C1", ls="--", label="mode")
    ax.axvspan(summary.lower68[0], summary.upper68[0], alpha=0.2, label="68%")
    ax.set(xlim=(-2.5, 0.5), xlabel="d ln rho / d ln r at 150 pc", ylabel="posterior")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
