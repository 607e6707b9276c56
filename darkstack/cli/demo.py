"""``darkstack demo``: the whole chain on the quick mock universe, ending with a report."""

from __future__ import annotations

from collections.abc import Sequence
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
@click.option(
    "--task",
    type=click.Choice(["profiles", "cusp_core", "dm2gal", "cluster_mass"]),
    default="profiles",
    show_default=True,
    help="profiles: mock SDSS + HI to mass profiles; cusp_core: dwarfs' stellar phase space "
    "to the 150 pc DM slope; dm2gal: a gravity-only run's dark-matter fields to the hydro "
    "run's stellar mass, against HODs; cluster_mass: clusters' SZ, X-ray and stellar maps to "
    "their projected mass (three single-view U-Nets, one multi-view, the Y-M NFW baseline).",
)
@dask_options
@verbose_option
def demo(
    out: Path, seed: int, task: str, dask_address: str | None, workers: int, verbose: bool
) -> None:
    """Universe -> ingest -> observe -> train -> evaluate with the quick preset.

    Writes OUT/sim (the simulation), OUT/store (catalogs, observations, the trained run and
    its report) and OUT/store/observations_preview.png; rerunning reuses what is there.
    With --task dm2gal: universe and its gravity-only twin (OUT/sim_dark) -> fields -> train
    -> paint the test cube -> evaluate against HODs.
    """
    if task == "cusp_core":
        _cusp_core_demo(out, seed, dask_address, workers)
        return
    if task == "cluster_mass":
        _cluster_mass_demo(out, seed, dask_address, workers)
        return
    if task == "dm2gal":
        _dm2gal_demo(out, seed=seed, dask_address=dask_address, workers=workers)
        return
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


def _cusp_core_demo(out: Path, seed: int, dask_address: str | None, workers: int) -> None:
    """The cusp_core chain on a few quick dwarfs, both folds, ending with the report."""
    from darkstack.cluster import dask_client
    from darkstack.config import load_config
    from darkstack.evaluate.cusp_core import CuspCoreEvaluateConfig, evaluate_cusp_core
    from darkstack.features.phase_space import PhaseSpaceConfig, build_phase_space
    from darkstack.ingest.dwarfs import DwarfIngestConfig, ingest_dwarfs
    from darkstack.train.session import run_training
    from darkstack.train.tasks import get_task
    from darkstack.train.tasks.cusp_core import CuspCoreTrainConfig
    from darkstack.universe.dwarfs import DWARF_PRESETS, DwarfsConfig, build_dwarfs

    sim, store = out / "sim", out / "store"
    # Nine dwarfs: the lightest cores of the quick particle mass can have an empty slope-fit
    # shell, and each of the two folds needs 3 dwarfs outside its test split.
    config = load_config(
        DwarfsConfig, preset=DWARF_PRESETS["quick"], overrides=[f"seed={seed}", "n_dwarfs=9"]
    )
    with dask_client(address=dask_address, workers=workers) as client:
        if not (sim / "truth.parquet").exists():
            build_dwarfs(config, sim, client=client, overwrite=True)
        catalog = ingest_dwarfs(DwarfIngestConfig(), sim=sim / "output", store=store, client=client)
        click.echo(f"measured slopes: {catalog}")
        maps = build_phase_space(
            PhaseSpaceConfig(n_lines_of_sight=4, n_subsets=4, n_stars=500),
            store=store,
            client=client,
        )
    click.echo(f"phase-space maps: {maps}")
    preset = get_task("cusp_core").presets["quick"]
    for fold in range(int(preset["data"]["n_folds"])):
        train_config = load_config(
            CuspCoreTrainConfig, preset=preset, overrides=[f"data.fold={fold}"]
        )
        run_training(train_config, store=store, use_ray=False)
        click.echo(f"trained fold {fold}: {store / 'runs' / train_config.run_name}")
    report = evaluate_cusp_core(store, train_config.run_name, CuspCoreEvaluateConfig())
    click.echo(f"report: {report / 'summary.md'}")


#: The demo's maps: the observer's framing (3 Mpc around the BCG), 8 lines of sight of 32 px
#: binned from 128; half the 6 quick clusters train, one validates, two are the test split.
CLUSTER_DEMO_MAPS = (
    "framing=observer",
    "n_pixels=32",
    "oversample=4",
    "n_lines_of_sight=8",
)
CLUSTER_DEMO_SPLIT = "data.split_fractions=[0.5,0.17,0.33]"


def _cluster_mass_demo(out: Path, seed: int, dask_address: str | None, workers: int) -> None:
    """The cluster_mass chain on the 6 quick clusters: three single-view U-Nets and an
    early-fusion multi-view one, then the multi-view run's report (which compares all four and
    the Y-M NFW baseline)."""
    from darkstack.cluster import dask_client
    from darkstack.config import load_config
    from darkstack.evaluate.cluster_mass.report import (
        ClusterMassEvaluateConfig,
        evaluate_cluster_mass,
    )
    from darkstack.features.cluster_observe import ClusterMapsConfig, build_cluster_maps
    from darkstack.ingest.clusters import ClusterIngestConfig, ingest_clusters
    from darkstack.train.session import run_training
    from darkstack.train.tasks import get_task
    from darkstack.train.tasks.cluster_mass import VIEWS, ClusterMassTrainConfig
    from darkstack.universe.clusters.preset import CLUSTER_PRESETS, ClustersConfig, build_clusters

    sim, store = out / "sim", out / "store"
    config = load_config(
        ClustersConfig, preset=CLUSTER_PRESETS["quick"], overrides=[f"seed={seed}"]
    )
    with dask_client(address=dask_address, workers=workers) as client:
        if not (sim / "catalogs" / "clusters.parquet").exists():
            build_clusters(config, sim, client=client, overwrite=True)
        catalog = ingest_clusters(
            ClusterIngestConfig(), sim=sim / "output", store=store, client=client
        )
        click.echo(f"clusters: {catalog}")
        maps = build_cluster_maps(
            load_config(ClusterMapsConfig, overrides=list(CLUSTER_DEMO_MAPS)),
            store=store,
            client=client,
        )
    click.echo(f"cluster maps: {maps}")
    preset = get_task("cluster_mass").presets["quick"]
    for views in [[view] for view in VIEWS] + [list(VIEWS)]:
        train_config = load_config(
            ClusterMassTrainConfig,
            preset=preset,
            overrides=[f"views=[{','.join(views)}]", CLUSTER_DEMO_SPLIT],
        )
        run_training(train_config, store=store, use_ray=False)
        click.echo(f"trained {'+'.join(views)}: {store / 'runs' / train_config.run_name}")
    report = evaluate_cluster_mass(store, train_config.run_name, ClusterMassEvaluateConfig())
    click.echo(f"report: {report / 'summary.md'}")


def _dm2gal_demo(
    out: Path,
    *,
    seed: int,
    dask_address: str | None,
    workers: int,
    grid: int = 64,
    universe_overrides: Sequence[str] = (),
    train_overrides: Sequence[str] = (),
    evaluate_overrides: Sequence[str] = (),
) -> None:
    """The dm2gal chain on the quick universe and its twin, ending with the report.

    The commands of docs/dm2gal.md's quick chain: ``universe --preset quick --dark-twin``,
    ``fields --grid 64`` (the three fields dm2gal reads), ``train --task dm2gal --preset quick
    --no-ray`` and ``evaluate --task dm2gal`` (painting both modes, 20 HOD realisations).
    Tests shrink it with the keyword arguments (overrides of each stage's settings).
    """
    from darkstack.cli.build_report import finish_build
    from darkstack.cluster import dask_client
    from darkstack.config import dump_config, load_config
    from darkstack.evaluate.dm2gal.report import Dm2galEvaluateConfig, evaluate_dm2gal
    from darkstack.features.fields.build import run_fields
    from darkstack.features.fields.config import FieldsConfig
    from darkstack.store import StoreLayout
    from darkstack.tng_layout import subhalo_matching_path
    from darkstack.train.session import run_training
    from darkstack.train.tasks import get_task
    from darkstack.train.tasks.dm2gal import Dm2galTrainConfig
    from darkstack.train.tasks.dm2gal.samples import INPUT_FIELDS, TARGET_FIELD
    from darkstack.universe.build import build_universe
    from darkstack.universe.config import PRESETS, UniverseConfig

    sim, dark, store = out / "sim", out / "sim_dark", out / "store"
    universe = load_config(
        UniverseConfig, preset=PRESETS["quick"], overrides=[f"seed={seed}", *universe_overrides]
    )
    fields = FieldsConfig(grid=grid, fields=(*INPUT_FIELDS, TARGET_FIELD))
    with dask_client(address=dask_address, workers=workers) as client:
        # The twin's match file is the pair's last write: without it, build both again.
        if not subhalo_matching_path(sim / "output").exists():
            built = build_universe(universe, sim, client=client, overwrite=True, dark_twin=dark)
            click.echo(f"universe {built.root} and its gravity-only twin {dark}")
        summary = run_fields(
            fields, sim=sim / "output", dark=dark / "output", store=store, client=client
        )
    dump_config(fields, StoreLayout(store).fields_config)
    click.echo(f"fields {', '.join(summary.fields)} on a {grid}^3 grid: {summary.path}")
    finish_build(summary.report)
    train_config = load_config(
        Dm2galTrainConfig, preset=get_task("dm2gal").presets["quick"], overrides=train_overrides
    )
    trained = run_training(train_config, store=store, use_ray=False)
    click.echo(f"trained {train_config.run_name} in this process -> {trained.paths.root}")
    evaluation = load_config(Dm2galEvaluateConfig, overrides=evaluate_overrides)
    report = evaluate_dm2gal(store, train_config.run_name, evaluation)
    click.echo(f"report: {report / 'summary.md'}")
