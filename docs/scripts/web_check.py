"""Measure the mock universe's cosmic web (issue 17, "The mock carries a cosmic web").

Builds the ``small`` preset (optionally reduced: ``--set web.lattice=192``) with its Dark twin
and reports, against the saved linear field of the same phases:

- total mass over ``Omega_m rho_crit V``;
- r(k) and P(k) / P_lin(k) of the matter field (all particles of the hydro run, CIC on the
  lattice's grid, window deconvolved, Poisson shot noise subtracted) in bins below 0.2 h/Mpc;
- halo-matter bias ``P_hm / P_mm`` in three mass bins against Tinker et al. 2010 (colossus);
- the hydro over Dark matter power at 0.5-20 h/Mpc, against TNG's baryonic suppression
  (Springel et al. 2018);
- the Dark/hydro M200c ratio of matched groups against Velliscig et al. 2014;
- a slice figure of both runs (``docs/figures/web_slice.png``).

Usage: ``python docs/scripts/web_check.py --out /tmp/web [--set web.lattice=192]``.
P(k) follows Pylians' conventions (grid points at i L / N, bins of width k_F) like
:mod:`darkstack.features.fields.spectra`; it is recomputed here in numpy because the linear
field is not a ``fields.zarr`` field.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import h5py
import numpy as np
import xarray as xr

from darkstack.config import load_config
from darkstack.constants import RHO_CRIT0_H2_MSUN_PER_KPC3
from darkstack.cosmology import TNG_COSMOLOGY, colossus_cosmology
from darkstack.features.deposit.mesh import cell_coordinates, deposit, window
from darkstack.plotting import pyplot
from darkstack.tng_layout import group_catalog_path, linear_field_path, snapshot_path
from darkstack.universe.build import build_universe
from darkstack.universe.config import PRESETS, UniverseConfig
from darkstack.universe.dark import log_hydro_to_dmo_mass_ratio

UNIT_MASS_MSUN_H = 1.0e10  # TNG code mass, Msun/h


def _particles(base: Path, snap: int) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Positions (comoving Mpc/h) and masses (Msun/h) of every particle of a run."""
    positions, masses = [], []
    index = 0
    header: dict[str, float] = {}
    while snapshot_path(base, snap, index).exists():
        with h5py.File(snapshot_path(base, snap, index), "r") as f:
            attrs = f["Header"].attrs
            header = {
                "box": float(attrs["BoxSize"]) / 1e3,
                "n_files": int(attrs["NumFilesPerSnapshot"]),
            }
            for ptype in range(6):
                name = f"PartType{ptype}"
                if name not in f:
                    continue
                pos = f[name]["Coordinates"][()] / 1e3
                positions.append(pos)
                if attrs["MassTable"][ptype] > 0:
                    masses.append(np.full(len(pos), attrs["MassTable"][ptype]))
                else:
                    masses.append(f[name]["Masses"][()].astype(np.float64))
        index += 1
    return np.concatenate(positions), np.concatenate(masses) * UNIT_MASS_MSUN_H, header


def _groups(base: Path, snap: int) -> tuple[np.ndarray, np.ndarray]:
    """Group positions (Mpc/h) and M200c (Msun/h)."""
    pos, mass = [], []
    index = 0
    while group_catalog_path(base, snap, index).exists():
        with h5py.File(group_catalog_path(base, snap, index), "r") as f:
            if "Group" in f and "GroupPos" in f["Group"]:
                pos.append(f["Group/GroupPos"][()] / 1e3)
                mass.append(f["Group/Group_M_Crit200"][()] * UNIT_MASS_MSUN_H)
        index += 1
    return np.concatenate(pos), np.concatenate(mass)


def delta_k(positions: np.ndarray, weights: np.ndarray, *, box: float, n: int) -> np.ndarray:
    """CIC overdensity's Fourier modes, CIC window deconvolved."""
    grid = deposit(cell_coordinates(positions, cell_size=box / n), weights, shape=(n,) * 3)
    grid /= grid.mean()
    grid -= 1.0
    modes = np.fft.rfftn(grid)
    f = np.fft.fftfreq(n, 1.0 / n)
    fz = np.fft.rfftfreq(n, 1.0 / n)
    w = (
        window(f[:, None, None] / n, scheme="cic")
        * window(f[None, :, None] / n, scheme="cic")
        * window(fz[None, None, :] / n, scheme="cic")
    )
    return modes / w


def binned(a: np.ndarray, b: np.ndarray, *, box: float, n: int) -> tuple[np.ndarray, ...]:
    """Mean k, <Re(a b*)> (Mpc/h)^3 and mode counts in bins of width k_F (DC dropped)."""
    k_f = 2 * np.pi / box
    f = np.fft.fftfreq(n, 1.0 / n)
    fz = np.fft.rfftfreq(n, 1.0 / n)
    kk = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + fz[None, None, :] ** 2)
    # Modes of the kz = 0 and Nyquist planes appear twice in a full FFT: weight the rest 2.
    weight = np.full(kk.shape, 2.0)
    weight[:, :, 0] = 1.0
    if n % 2 == 0:
        weight[:, :, -1] = 1.0
    bins = np.floor(kk).astype(int).ravel()
    power = (a * np.conj(b)).real.ravel() * (box / n**2) ** 3
    count = np.bincount(bins, weight.ravel())
    k_sum = np.bincount(bins, (weight * kk).ravel())
    p_sum = np.bincount(bins, (weight.ravel() * power))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (k_sum / count * k_f)[1:], (p_sum / count)[1:], count[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--set", action="append", default=[], help="config override, e.g. web.lattice=192"
    )
    parser.add_argument("--reuse", action="store_true", help="measure an existing build")
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/web_slice.png"))
    args = parser.parse_args()
    config = load_config(UniverseConfig, preset=PRESETS["small"], overrides=args.set)
    sim, dark = args.out / "SIM", args.out / "SIM_DARK"
    if not args.reuse:
        start = time.perf_counter()
        build_universe(config, sim, overwrite=True, progress=False, dark_twin=dark)
        print(f"build: {time.perf_counter() - start:.0f} s")
    du = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"disk: {du / 1e6:.0f} MB (both runs and the linear field)")
    snap, cosmo = config.snapshot, TNG_COSMOLOGY
    h = cosmo.hubble_param

    pos, mass, header = _particles(sim / "output", snap)
    box = header["box"]
    expected = cosmo.omega_m * RHO_CRIT0_H2_MSUN_PER_KPC3 * 1e9 * box**3  # Msun/h
    print(
        f"hydro particles: {len(pos)}; total mass / (Omega_m rho_crit V): "
        f"{mass.sum() / expected:.6f}"
    )
    dpos, dmass, _ = _particles(dark / "output", snap)
    print(f"dark particles: {len(dpos)}; total mass ratio: {dmass.sum() / expected:.6f}")

    linear = xr.open_zarr(linear_field_path(sim), consolidated=False)["delta"].values.astype(
        np.float64
    )
    n = linear.shape[0]
    lin_k = np.fft.rfftn(linear)
    m_k = delta_k(pos, mass, box=box, n=n)
    k, p_mm, counts = binned(m_k, m_k, box=box, n=n)
    shot = box**3 * np.sum(mass**2) / mass.sum() ** 2
    _, p_lin, _ = binned(lin_k, lin_k, box=box, n=n)
    _, p_x, _ = binned(m_k, lin_k, box=box, n=n)
    d_k = delta_k(dpos, dmass, box=box, n=n)
    _, p_dd, _ = binned(d_k, d_k, box=box, n=n)
    _, p_dx, _ = binned(d_k, lin_k, box=box, n=n)
    dshot = box**3 * np.sum(dmass**2) / dmass.sum() ** 2
    print(f"shot noise: hydro {shot:.3g}, dark {dshot:.3g} (Mpc/h)^3")
    print("k [h/Mpc]  modes  r_hydro  P_hydro/P_lin  r_dark  P_dark/P_lin")
    for i in np.flatnonzero(k < 0.45):
        r = p_x[i] / np.sqrt((p_mm[i] - shot) * p_lin[i])
        rd = p_dx[i] / np.sqrt((p_dd[i] - dshot) * p_lin[i])
        print(
            f"{k[i]:.3f}  {counts[i]:6.0f}  {r:.3f}  {(p_mm[i] - shot) / p_lin[i]:.3f}"
            f"  {rd:.3f}  {(p_dd[i] - dshot) / p_lin[i]:.3f}"
        )
    # TNG's published matter P(k): baryons damp the total power by up to 20% on scales up to
    # k ~ 10 h/Mpc against the Dark run (Springel et al. 2018, MNRAS 475, 676, abstract).
    print("k [h/Mpc]  P_hydro/P_dark (shot noise subtracted; TNG: down to ~0.8 by 10 h/Mpc)")
    for k_target in (0.5, 1.0, 2.0, 5.0, 10.0, 20.0):
        i = int(np.argmin(np.abs(k - k_target)))
        print(f"{k[i]:.2f}  {(p_mm[i] - shot) / (p_dd[i] - dshot):.3f}")

    from colossus.lss import bias

    colossus_cosmology(cosmo)
    gpos, gm200 = _groups(sim / "output", snap)
    low = k < 0.2
    edges = np.array([10**11.2, 10**11.7, 10**12.3, 10**14.0]) * h
    print("halo bias P_hm/P_mm (k < 0.2 h/Mpc) vs Tinker 2010:")
    for lo, hi in itertools.pairwise(edges):
        sel = (gm200 >= lo) & (gm200 < hi)
        if sel.sum() < 10:
            continue
        h_k = delta_k(gpos[sel], np.ones(sel.sum()), box=box, n=n)
        _, p_hm, _ = binned(h_k, m_k, box=box, n=n)
        b = np.sum((p_hm / (p_mm - shot) * counts)[low]) / counts[low].sum()
        b_t = float(np.mean(bias.haloBias(gm200[sel], config.redshift, "200c", model="tinker10")))
        print(
            f"  log M200c/(Msun/h) {np.log10(lo):.1f}-{np.log10(hi):.1f}: N={sel.sum()}"
            f" b={b:.3f} tinker={b_t:.3f} ratio={b / b_t:.3f}"
        )

    _, dgm = _groups(dark / "output", snap)
    both = (gm200 > 0) & (dgm > 0) & (gm200 > 10**11.5 * h)
    log_ratio = np.log10(dgm[both] / gm200[both])
    expected_ratio = -log_hydro_to_dmo_mass_ratio(dgm[both] / h)
    print(
        f"Dark/hydro M200c: median log ratio {np.median(log_ratio):.4f} dex, Velliscig 2014 "
        f"{np.median(expected_ratio):.4f} dex, median |diff| "
        f"{np.median(np.abs(log_ratio - expected_ratio)):.4f} dex ({both.sum()} groups)"
    )
    _slice_figure(pos, mass, dpos, dmass, box=box, path=args.figure)


def _slice_figure(
    pos: np.ndarray,
    mass: np.ndarray,
    dpos: np.ndarray,
    dmass: np.ndarray,
    *,
    box: float,
    path: Path,
) -> None:
    """Projected mass of a slab 0 < z < box/10 of both runs, on one colour scale."""
    plt = pyplot()

    images = []
    for p, m in ((pos, mass), (dpos, dmass)):
        sel = p[:, 2] < 0.1 * box
        image, _, _ = np.histogram2d(
            p[sel, 0], p[sel, 1], bins=300, range=[[0, box]] * 2, weights=m[sel]
        )
        images.append(image)
    floor = min(image[image > 0].min() for image in images)
    top = np.log10(max(image.max() for image in images) + floor)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), constrained_layout=True)
    for ax, image, title in zip(axes, images, ("hydro (all matter)", "Dark twin"), strict=True):
        ax.imshow(
            np.log10(image.T + floor),
            origin="lower",
            extent=(0, box, 0, box),
            cmap="magma",
            vmin=np.log10(floor),
            vmax=top,
        )
        ax.set_title(f"{title}, slab 0 < z < {0.1 * box:.0f} Mpc/h")
        ax.set_xlabel("x [Mpc/h]")
        ax.set_ylabel("y [Mpc/h]")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
