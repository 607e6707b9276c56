"""Benchmark: the stars of one mock dwarf, darkstack's Osipkov-Merritt sampler against galpy's.

A dwarf of the ``dwarfs`` universe gets ``n_stars`` stars drawn from an Osipkov-Merritt
distribution function in its total potential (:mod:`darkstack.universe.osipkov_merritt`).
darkstack tabulates f(Q) once per dwarf with vectorised Gauss-Legendre quadrature, checks
f >= 0 at 32 energies and draws |w| by per-star inverse CDF. The reference is galpy's
``osipkovmerrittdf`` (``eddingtondf`` when isotropic) on the same model, as darkstack used it
before: build the DF, check f >= 0 at the same 32 energies with galpy's ``fE``, then
``sample`` (galpy evaluates f on 202 energies with adaptive ``quad``). A third variant times
the whole ``generate_dwarf`` (dark-matter particles with Jeans velocities too).

The dwarfs are the first ``--dwarfs`` of every (400 / (8 ``--dwarfs``))-th member of the
``small`` preset's population (its order is random in mass and slope; one whose drawn r_a has
no valid DF is skipped), each variant drawing all of them in one round.

Run: ``nice -n 10 python benchmarks/bench_dwarfs.py [--dwarfs 3] [--repeats 3]`` (galpy's
rounds dominate: 4-16 CPU-s per dwarf; ~5 minutes in all at load 10 on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
from _harness import Report, compare, print_stats

from darkstack.universe.dwarfs import DWARF_PRESETS, Dwarf, DwarfsConfig, draw_dwarfs
from darkstack.universe.dwarfs import generate_dwarf as generate
from darkstack.universe.osipkov_merritt import (
    NegativeDistributionError,
    galpy_osipkov_merritt_df,
    sample_osipkov_merritt,
)


def galpy_stars(dwarf: Dwarf, *, n: int, seed: int) -> int:
    """The previous path: galpy's DF, its f >= 0 on 32 energies, its sampler."""
    from galpy.potential import evaluatePotentials

    df = galpy_osipkov_merritt_df(
        tracer=dwarf.stars,
        components=[dwarf.halo, dwarf.stars],
        anisotropy_radius_kpc=dwarf.anisotropy_radius_kpc,
        r_max_kpc=dwarf.stars.truncation_radius_kpc,
    )
    edf = getattr(df, "_edf", df)
    radii = np.geomspace(0.01 * dwarf.stars.scale_radius_kpc, edf._rmax, 32, endpoint=False)
    energies = evaluatePotentials(edf._pot, radii, np.zeros_like(radii), use_physical=False)
    values = np.asarray(edf.fE(energies))
    if values.min() < -1e-6 * values.max():
        raise NegativeDistributionError(f"galpy: f < 0 at r_a {dwarf.anisotropy_radius_kpc}")
    np.random.seed(seed)  # noqa: NPY002 (galpy draws from numpy's global state)
    orbits = df.sample(n=n)
    return len(orbits.x(use_physical=False))


def darkstack_stars(dwarf: Dwarf, *, n: int, seed: int) -> int:
    """darkstack's tabulated DF, its f >= 0 check and its sampler."""
    stars = sample_osipkov_merritt(
        np.random.default_rng(seed),
        n=n,
        tracer=dwarf.stars,
        components=[dwarf.halo, dwarf.stars],
        anisotropy_radius_kpc=dwarf.anisotropy_radius_kpc,
        r_max_kpc=dwarf.stars.truncation_radius_kpc,
    )
    return len(stars.position_kpc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dwarfs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = DwarfsConfig(**DWARF_PRESETS["small"])
    population = draw_dwarfs(config)
    n = config.n_stars
    chosen: list[tuple[int, Dwarf]] = []
    # Every (400 / 8n)-th member, the first n that have a valid DF at their drawn r_a (the
    # build doubles r_a otherwise).
    for index in np.linspace(0, len(population) - 1, 8 * args.dwarfs).round().astype(int):
        if len(chosen) == args.dwarfs:
            break
        try:
            darkstack_stars(population[index], n=10, seed=0)
        except NegativeDistributionError:
            continue
        chosen.append((int(index), population[index]))
    indices = [i for i, _ in chosen]
    dwarfs = [d for _, d in chosen]

    def ours() -> int:
        return sum(darkstack_stars(d, n=n, seed=i) for i, d in chosen)

    def reference() -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # galpy's integration warnings at the deepest E
            return sum(galpy_stars(d, n=n, seed=i) for i, d in chosen)

    def whole() -> int:
        return sum(
            sum(len(p["mass_msun"]) for p in generate(d, index=i, config=config).values())
            for i, d in chosen
        )

    cpu_s: dict[str, list[float]] = {}

    def with_cpu(key: str, run: Callable[[], int]) -> Callable[[], int]:
        """``run``, recording its CPU seconds too (the machine is shared: wall time drifts)."""

        def timed() -> int:
            start = time.process_time()
            value = run()
            cpu_s.setdefault(key, []).append(time.process_time() - start)
            return value

        return timed

    names = {
        "ours": "darkstack: stars (table + check + sample)",
        "galpy": "galpy osipkovmerrittdf: stars (build + check + sample)",
        "whole": "darkstack: whole dwarf (generate_dwarf, DM + stars)",
    }
    stats = compare(
        {
            names["ours"]: with_cpu("ours", ours),
            names["galpy"]: with_cpu("galpy", reference),
            names["whole"]: with_cpu("whole", whole),
        },
        repeats=args.repeats,
    )
    print(f"{len(dwarfs)} dwarfs of the small preset (indices {indices}), {n} stars each")
    print_stats(stats)
    report = Report(
        bench="dwarfs",
        title="Stars of a mock dwarf (Osipkov-Merritt sampling)",
        about=(
            "Drawing the stars of dwarfs of the `dwarfs-small` population from their "
            "Osipkov-Merritt distribution function in the total potential: darkstack's "
            "tabulated f(Q) (vectorised Gauss-Legendre Eddington quadrature) and sampler, "
            "against galpy's `osipkovmerrittdf` on the same model, and the whole "
            "`generate_dwarf` (dark matter included) for scale."
        ),
        parameters={
            "dwarfs": len(dwarfs),
            "indices": indices,
            "n_stars": n,
            "anisotropy_radius_kpc": [d.anisotropy_radius_kpc for d in dwarfs],
            "halo_gamma": [d.halo.gamma for d in dwarfs],
        },
    )
    report.comparison(
        f"Stars of {len(dwarfs)} dwarfs, {n} each",
        stats,
        reference=names["galpy"],
        differs=(
            "galpy evaluates f(Q) on 202 energies by adaptive quad through its unit wrappers "
            "and samples from a spline of f; the same model (tracer, potential, r_a, edge), "
            "f >= 0 checked at the same 32 energies"
        ),
        per=dict.fromkeys(stats, float(len(dwarfs))),
        per_unit="dwarfs",
        notes={names["whole"]: "also draws the dark-matter particles and their velocities"},
    )
    for key in ("ours", "galpy", "whole"):
        report.figure(
            f"wall seconds per dwarf, {names[key]}",
            stats[names[key]].median_s / len(dwarfs),
            unit="s",
        )
        # The warm-up round is the first; the median is over the timed rounds.
        cpu = statistics.median(cpu_s[key][1:]) / len(dwarfs)
        report.figure(f"CPU seconds per dwarf, {names[key]}", cpu, unit="s")
        print(f"  CPU per dwarf, {key}: {cpu:.3f} s")
    report.write()


if __name__ == "__main__":
    main()
