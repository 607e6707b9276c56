"""``darkstack demo``: the whole chain on the quick mock universe, ending with a report."""

from __future__ import annotations

from pathlib import Path

import click

from darkstack.cli.options import dask_options, verbose_option

# Means over finite values only: an unresolved galaxy's innermost mass is log10(0) = -inf, and
# a galaxy that failed has NaN; such a group shows NULL rather than a mean of -inf.
SUMMARY_SQL = """
SELECT status, count(*) AS galaxies,
       round(avg(log10(stellar_mass_msun)), 2) AS mean_log_mstar,
       round(avg(log10_mdm_enclosed[1]) FILTER (WHERE isfinite(log10_mdm_enclosed[1])), 2)
           AS mean_log_mdm_1kpc,
       round(avg(log10_mdm_enclosed[20]) FILTER (WHERE isfinite(log10_mdm_enclosed[20])), 2)
           AS mean_log_mdm_100kpc
FROM galaxies GROUP BY status ORDER BY galaxies DESC
"""


@click.command()
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Folder for SIM and STORE."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the universe.")
@dask_options
@verbose_option
def demo(out: Path, seed: int, dask_address: str | None, workers: int, verbose: bool) -> None:
    """Universe -> ingest -> observe -> train -> evaluate with the quick preset.

    Writes OUT/sim (the simulation), OUT/store (catalogs, observations, the trained run and
    its report) and OUT/store/observations_preview.png; rerunning reuses what is there.
    """
    from darkstack.catalogs.query import query_store
    from darkstack.cli.build_report import finish_build
    from darkstack.cli.query import render_table
    from darkstack.cluster import dask_client
    from darkstack.config import load_config
    from darkstack.evaluate.profiles import EvaluateConfig, evaluate_run
    from darkstack.features.observe import ObserveConfig, run_observe
    from darkstack.features.preview import write_preview
    from darkstack.ingest.build import run_ingest
    from darkstack.ingest.config import IngestConfig
    from darkstack.store import StoreLayout
    from darkstack.train.session import run_training
    from darkstack.train.tasks.profiles import PRESETS as TRAIN_PRESETS
    from darkstack.train.tasks.profiles import ProfilesTrainConfig
    from darkstack.universe.build import build_universe
    from darkstack.universe.config import PRESETS, UniverseConfig
    from darkstack.universe.summary import summarise_simulation

    sim, store = out / "sim", out / "store"
    with dask_client(address=dask_address, workers=workers) as client:
        if not (sim / "truth.parquet").exists():
            config = load_config(
                UniverseConfig, preset=PRESETS["quick"], overrides=[f"seed={seed}"]
            )
            build_universe(config, sim, client=client)
        for line in summarise_simulation(sim / "output").lines():
            click.echo(line)
        summary = run_ingest(IngestConfig(), sim=sim / "output", store=store, client=client)
        finish_build(summary.report)
        # One view per galaxy keeps the demo to a few minutes; the paper's three are the default.
        observed = run_observe(ObserveConfig(n_realisations=1), store=store, client=client)
    finish_build(observed.report)
    preview = write_preview(store, path=StoreLayout(store).preview)
    click.echo(f"preview of a few galaxies in all 8 channels: {preview}")
    click.echo(render_table(query_store(store, SUMMARY_SQL), limit_rows=20, max_cell_width=None))
    train_config = load_config(ProfilesTrainConfig, preset=TRAIN_PRESETS["quick"])
    trained = run_training(train_config, store=store, verbose=verbose)
    click.echo(f"trained {train_config.run_name} with Ray Train -> {trained.paths.root}")
    report = evaluate_run(store, train_config.run_name, EvaluateConfig(rotation_curve_galaxies=2))
    click.echo(f'explore: darkstack query --store {store} "SELECT * FROM galaxies LIMIT 5"')
    click.echo(f"report: {report / 'summary.md'}")
