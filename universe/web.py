"""The mock universe's cosmic web: one Gaussian linear field drives halos and unbound matter.

One realisation of the linear density field at the snapshot's redshift (colossus' linear
power spectrum of the universe's cosmology, so ``P = D^2 P_lin``) lives on a lattice of
``lattice^3`` points in the comoving box. Through the same phases:

- **Unbound dark matter.** Each lattice point ``q`` is a particle displaced by Lagrangian
  perturbation theory, ``x = q + psi1(q) + psi2(q)`` (Zel'dovich, plus second order when
  ``second_order``; Scoccimarro 1998, MNRAS 299, 1097), moving with ``v = a H (f1 psi1 + f2 psi2)``;
  or, with ``particle_mesh_steps``, moved from there by particle-mesh gravity
  (:mod:`darkstack.universe.particle_mesh`).
  With the web on, every dark-matter particle weighs ``Omega_m rho_crit V / lattice^3``, a
  lattice particle standing for all the matter of its Lagrangian cell.
- **Halos.** A halo of mass M is drawn at a Lagrangian position with the non-negative
  intensity ``exp(b_L delta_R - b_L^2 sigma_R^2 / 2)`` (a lognormal mock's), ``delta_R`` the
  linear field smoothed with a top hat of the halo's Lagrangian radius ``R_L``
  (``M = rho_mean 4/3 pi R_L^3``) and ``b_L = b - 1`` the Lagrangian bias of Tinker et al.
  (2010)'s Eulerian bias ``b`` (colossus). The intensity correlates with the linear field with
  bias exactly ``b_L`` (a Gaussian identity), and moving the halo with the displacement at its
  Lagrangian centre adds the ``1`` back (Mo & White 1996), so Eulerian halos carry Tinker's
  bias on large scales.
- **Mass bookkeeping.** Each halo (and each tiny group) claims, from nearest outwards, the
  ``round(M_particles / m)`` lattice points nearest its Lagrangian centre that no halo claimed
  before it (most massive first); the claimed points are not written. So the total mass is
  ``Omega_m rho_crit V`` to half a particle per halo and no mass is counted twice.

Random stream: the phases use ``SeedSequence(seed, spawn_key=(6,))``; halo proposals draw from
the plan's own stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from darkstack.constants import RHO_CRIT0_H2_MSUN_PER_KPC3
from darkstack.cosmology import CosmologyParams, colossus_cosmology
from darkstack.universe.config import WebConfig
from darkstack.universe.particle_mesh import evolve, fourier_grid

FloatArray = NDArray[np.float64]
#: Halos of masses within this many dex share one smoothed intensity.
_MASS_BIN_DEX = 0.1


@dataclass(kw_only=True)
class CosmicWeb:
    """One realisation of the linear field, its displacement and its halo intensities.

    Lengths are comoving Mpc/h on the lattice, as the box is configured.
    """

    config: WebConfig
    cosmology: CosmologyParams
    box_mpc_h: float
    redshift: float
    seed: int
    delta: NDArray[np.float32] = field(repr=False)
    psi: NDArray[np.float32] = field(repr=False)  # (3, n, n, n): psi1 + psi2
    velocity_kms: NDArray[np.float32] = field(repr=False)  # (3, n, n, n), peculiar
    lagrangian_mpc_h: dict[int, FloatArray] = field(default_factory=dict, repr=False)
    _delta_k: NDArray[np.complex128] | None = field(default=None, repr=False)
    _intensity: dict[int, tuple[FloatArray, float]] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return self.config.lattice

    @property
    def cell_mpc_h(self) -> float:
        return self.box_mpc_h / self.n

    def particle_mass_msun(self) -> float:
        """``Omega_m rho_crit V / n^3`` (Msun): the mass of one lattice particle."""
        h = self.cosmology.hubble_param
        volume_mpc3 = (self.box_mpc_h / h) ** 3
        rho_mean = self.cosmology.omega_m * RHO_CRIT0_H2_MSUN_PER_KPC3 * h**2 * 1.0e9
        return rho_mean * volume_mpc3 / self.n**3

    def lagrangian_radius_mpc_h(self, mass_msun: FloatArray | float) -> FloatArray:
        """Comoving radius (Mpc/h) of the sphere of mean density holding ``mass_msun``."""
        h = self.cosmology.hubble_param
        rho_mean = self.cosmology.omega_m * RHO_CRIT0_H2_MSUN_PER_KPC3 * 1.0e9 / h  # Msun/(Mpc/h)^3
        return np.cbrt(3.0 * np.asarray(mass_msun) / (4.0 * np.pi * rho_mean))

    # --- halos ---------------------------------------------------------------------------

    def draw_halo(
        self, rng: np.random.Generator, index: int, mass_msun: float, box_kpc: float
    ) -> FloatArray:
        """Draw halo ``index`` of ``mass_msun``: its Eulerian position (physical kpc).

        The Lagrangian position drawn is remembered as the halo's.
        """
        key = int(np.floor(np.log10(mass_msun) / _MASS_BIN_DEX))
        cumulative, cell = self._halo_intensity(key)
        n_s = round(self.box_mpc_h / cell)
        flat = int(np.searchsorted(cumulative, rng.uniform(0.0, cumulative[-1]), side="right"))
        flat = min(flat, cumulative.size - 1)
        q = (np.array(np.unravel_index(flat, (n_s,) * 3)) + rng.uniform(size=3)) * cell
        self.lagrangian_mpc_h[index] = q
        nearest = self._nearest_site(q)
        x = np.mod(q + self.psi[(slice(None), *nearest)], self.box_mpc_h)
        return x * box_kpc / self.box_mpc_h

    def halo_velocity_kms(self, index: int) -> FloatArray:
        """The peculiar velocity of the lattice at halo ``index``'s Lagrangian centre."""
        nearest = self._nearest_site(self.lagrangian_mpc_h[index])
        return self.velocity_kms[(slice(None), *nearest)].astype(np.float64)

    def _nearest_site(self, q_mpc_h: FloatArray) -> tuple[int, int, int]:
        i, j, k = (np.round(q_mpc_h / self.cell_mpc_h).astype(int) % self.n).tolist()
        return i, j, k

    def _halo_intensity(self, key: int) -> tuple[FloatArray, float]:
        """Cumulative intensity on the sampling grid for halos of mass bin ``key``."""
        if key not in self._intensity:
            from colossus.lss import bias

            colossus_cosmology(self.cosmology)
            mass = 10.0 ** ((key + 0.5) * _MASS_BIN_DEX)
            b_eulerian = float(
                bias.haloBias(
                    mass * self.cosmology.hubble_param, self.redshift, "200c", model="tinker10"
                )
            )
            b_l = b_eulerian - 1.0
            n_s = min(self.n, self.config.halo_sampling_grid)
            smoothed = self._smoothed(float(self.lagrangian_radius_mpc_h(mass)), n_s)
            sigma2 = float(smoothed.var())
            intensity = np.exp(b_l * smoothed - 0.5 * b_l**2 * sigma2)
            self._intensity[key] = (np.cumsum(intensity.ravel()), self.box_mpc_h / n_s)
        return self._intensity[key]

    def _smoothed(self, radius_mpc_h: float, n_s: int) -> FloatArray:
        """The linear field smoothed with a top hat of ``radius_mpc_h``, on an ``n_s^3`` grid."""
        if self._delta_k is None:
            self._delta_k = np.fft.rfftn(self.delta.astype(np.float64))
        half = n_s // 2
        rows = np.r_[0:half, self.n - half : self.n] if n_s < self.n else slice(None)
        modes = self._delta_k[rows][:, rows][:, :, : half + 1]
        kx = 2.0 * np.pi / self.box_mpc_h * np.fft.fftfreq(n_s, 1.0 / n_s)
        kz = 2.0 * np.pi / self.box_mpc_h * np.fft.rfftfreq(n_s, 1.0 / n_s)
        x = np.sqrt(kx[:, None, None] ** 2 + kx[None, :, None] ** 2 + kz[None, None, :] ** 2)
        x *= radius_mpc_h
        x_safe = np.where(x > 0, x, 1.0)
        window = np.where(x > 0, 3.0 * (np.sin(x_safe) - x_safe * np.cos(x_safe)) / x_safe**3, 1.0)
        return np.fft.irfftn(modes * window, s=(n_s,) * 3, axes=(0, 1, 2)) * (n_s / self.n) ** 3

    # --- unbound matter -------------------------------------------------------------------

    def unclaimed_sites(
        self, centres_mpc_h: FloatArray, masses_msun: FloatArray
    ) -> NDArray[np.int64]:
        """Flat indices of the lattice points no halo claims, in lattice order.

        Parameters
        ----------
        centres_mpc_h : (N, 3) array
            Lagrangian centres (comoving Mpc/h) of the groups, most massive first.
        masses_msun : (N,) array
            Each group's particle mass (Msun): it claims ``round(mass / m)`` points.
        """
        claimed = np.zeros((self.n,) * 3, dtype=bool)
        m = self.particle_mass_msun()
        for centre, mass in zip(centres_mpc_h, masses_msun, strict=True):
            _claim(claimed, centre / self.cell_mpc_h, round(float(mass) / m))
        return np.flatnonzero(~claimed.ravel())

    def particles(self, sites: NDArray[np.int64], box_kpc: float) -> tuple[FloatArray, FloatArray]:
        """Eulerian positions (physical kpc) and peculiar velocities (km/s) of lattice ``sites``."""
        ijk = np.unravel_index(sites, (self.n,) * 3)
        q = np.stack(ijk, axis=1) * self.cell_mpc_h
        psi = np.stack([self.psi[axis][ijk] for axis in range(3)], axis=1)
        x = np.mod(q + psi, self.box_mpc_h) * (box_kpc / self.box_mpc_h)
        v = np.stack([self.velocity_kms[axis][ijk] for axis in range(3)], axis=1)
        return np.mod(x, box_kpc), v.astype(np.float64)

    def save_linear_field(self, path: Path) -> None:
        """Write the linear overdensity as ``path`` (a zarr store: ``delta`` over (x, y, z))."""
        import xarray as xr

        coords = (np.arange(self.n) * self.cell_mpc_h).astype(np.float64)
        dataset = xr.Dataset(
            {"delta": (("x", "y", "z"), self.delta)},
            coords={"x": coords, "y": coords, "z": coords},
            attrs={
                "description": "linear density contrast of the mock universe's phases, "
                "D(z)^2 P_lin at the snapshot redshift; grid points at i L / N",
                "box_mpc_h": self.box_mpc_h,
                "redshift": self.redshift,
                "lattice": self.n,
                "seed": self.seed,
                "second_order": self.config.second_order,
                "units": "dimensionless; coordinates in comoving Mpc/h",
            },
        )
        chunk = min(self.n, 128)
        dataset.to_zarr(
            path,
            mode="w",
            encoding={"delta": {"chunks": (chunk, chunk, chunk)}},
            consolidated=False,
        )


def _claim(claimed: NDArray[np.bool_], centre_cells: FloatArray, count: int) -> None:
    """Mark the ``count`` unclaimed lattice points nearest ``centre_cells`` as claimed."""
    if count <= 0:
        return
    n = claimed.shape[0]
    radius = np.cbrt(3.0 * count / (4.0 * np.pi))
    while True:
        reach = min(int(np.ceil(1.3 * radius)) + 1, n // 2)
        base = np.floor(centre_cells).astype(int)
        offsets = np.arange(-reach, reach + 1)
        axes = [(base[a] + offsets) % n for a in range(3)]
        delta = [base[a] + offsets - centre_cells[a] for a in range(3)]
        d2 = delta[0][:, None, None] ** 2 + delta[1][None, :, None] ** 2
        d2 = d2 + delta[2][None, None, :] ** 2
        block = claimed[np.ix_(*axes)]
        free = np.flatnonzero(~block.ravel())
        if free.size >= count or reach >= n // 2:
            break
        radius *= 1.5
    if free.size < count:
        raise RuntimeError(f"a halo needs {count} lattice points but only {free.size} are free")
    order = free[np.argsort(d2.ravel()[free], kind="stable")[:count]]
    chosen = np.unravel_index(order, block.shape)
    claimed[axes[0][chosen[0]], axes[1][chosen[1]], axes[2][chosen[2]]] = True


def realise(
    config: WebConfig,
    *,
    box_mpc_h: float,
    redshift: float,
    cosmology: CosmologyParams,
    seed: int,
) -> CosmicWeb:
    """Draw the linear field and its displacement (see the module docstring).

    Parameters
    ----------
    config : WebConfig
        Lattice size and order of the displacement.
    box_mpc_h : float
        Comoving side of the periodic box (Mpc/h).
    redshift : float
        The snapshot's redshift: the field is the linear one grown to it.
    cosmology : CosmologyParams
        The cosmology of the power spectrum and growth.
    seed : int
        The phases' seed (``config.seed`` when set, else the universe's).
    """
    n = config.lattice
    phases = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(6,)))
    delta_k = np.fft.rfftn(phases.standard_normal((n, n, n)))
    wavevector, k2 = fourier_grid(n, box_mpc_h)
    cell_volume = (box_mpc_h / n) ** 3
    delta_k *= np.sqrt(
        linear_power(np.sqrt(k2), redshift=redshift, cosmology=cosmology) / cell_volume
    )
    delta_k[0, 0, 0] = 0.0
    delta = np.fft.irfftn(delta_k, s=(n,) * 3, axes=(0, 1, 2))
    # one component at a time: a complex lattice each, not three at once
    psi = np.stack(
        [
            np.fft.irfftn(1j * k * delta_k / k2, s=(n,) * 3, axes=(0, 1, 2)).astype(np.float32)
            for k in wavevector
        ]
    )
    cosmo = colossus_cosmology(cosmology)
    omega_z = float(cosmo.Om(redshift))
    psi2 = None
    if config.second_order:
        psi2 = _second_order(delta_k, wavevector, k2, n) * np.float32(
            -3.0 / 7.0 * omega_z ** (-1.0 / 143.0)
        )
    if config.particle_mesh_steps is not None:
        del delta_k, k2
        psi, velocity = evolve(
            psi,
            psi2,
            box_mpc_h=box_mpc_h,
            cosmology=cosmology,
            redshift=redshift,
            start_redshift=config.particle_mesh_start_redshift,
            steps=config.particle_mesh_steps,
        )
    else:
        # v = a H f psi, psi in comoving Mpc (psi_h / h); f1 = Omega^0.55, f2 = 2 Omega^(6/11).
        to_kms = 1.0 / (1.0 + redshift) * float(cosmo.Hz(redshift)) / cosmology.hubble_param
        velocity = psi * np.float32(to_kms * omega_z**0.55)
        if psi2 is not None:
            psi += psi2
            velocity += psi2 * np.float32(to_kms * 2.0 * omega_z ** (6.0 / 11.0))
        if config.collapse_scale_mpc_h is not None:
            psi = _augmented(psi, delta, wavevector, k2, config.collapse_scale_mpc_h)
    return CosmicWeb(
        config=config,
        cosmology=cosmology,
        box_mpc_h=box_mpc_h,
        redshift=redshift,
        seed=seed,
        delta=delta.astype(np.float32),
        psi=psi,
        velocity_kms=velocity,
    )


def _second_order(
    delta_k: NDArray[np.complex128],
    wavevector: Sequence[NDArray[np.floating]],
    k2: FloatArray,
    n: int,
) -> NDArray[np.float32]:
    """``grad phi2``, ``lap phi2 = sum_{i<j} phi1_ii phi1_jj - phi1_ij^2``, ``lap phi1 = delta``.

    The displacement for ``D2 = 1``; the caller multiplies by ``-3/7 Omega^-1/143``.
    """
    phi1_k = -delta_k / k2

    def hessian(i: int, j: int) -> FloatArray:
        return np.fft.irfftn(-wavevector[i] * wavevector[j] * phi1_k, s=(n,) * 3, axes=(0, 1, 2))

    diagonal = [hessian(i, i) for i in range(3)]
    source = diagonal[0] * diagonal[1] + diagonal[0] * diagonal[2] + diagonal[1] * diagonal[2]
    del diagonal
    for i, j in ((0, 1), (0, 2), (1, 2)):
        source -= hessian(i, j) ** 2
    phi2_k = -np.fft.rfftn(source) / k2
    phi2_k[0, 0, 0] = 0.0
    # x = q - D1 grad phi1 + D2 grad phi2; grad in Fourier space is i k.
    return np.stack(
        [
            np.fft.irfftn(1j * k * phi2_k, s=(n,) * 3, axes=(0, 1, 2)).astype(np.float32)
            for k in wavevector
        ]
    )


def _augmented(
    psi: NDArray[np.float32],
    delta: FloatArray,
    wavevector: Sequence[NDArray[np.floating]],
    k2: FloatArray,
    scale_mpc_h: float,
) -> NDArray[np.float32]:
    """ALPT (Kitaura & Hess 2013, MNRAS 435, L78): LPT above ``scale_mpc_h``, spherical collapse
    below it.

    The spherical-collapse displacement has divergence ``3 (sqrt(1 - 2 delta / 3) - 1)``
    (``-3`` where ``delta >= 3/2``: collapsed); the two are joined with a Gaussian kernel
    ``exp(-k^2 r^2 / 2)`` on the LPT one.
    """
    n = delta.shape[0]
    divergence = 3.0 * (np.sqrt(np.clip(1.0 - 2.0 * delta / 3.0, 0.0, None)) - 1.0)
    div_k = np.fft.rfftn(divergence)
    div_k[0, 0, 0] = 0.0
    kernel = np.exp(-0.5 * k2 * scale_mpc_h**2)
    kernel[0, 0, 0] = 1.0
    out = np.empty_like(psi)
    for axis, k in enumerate(wavevector):
        sc_k = -1j * k * div_k / k2
        lpt_k = np.fft.rfftn(psi[axis].astype(np.float64))
        mixed = kernel * lpt_k + (1.0 - kernel) * sc_k
        out[axis] = np.fft.irfftn(mixed, s=(n,) * 3, axes=(0, 1, 2)).astype(np.float32)
    return out


def linear_power(k_h_mpc: FloatArray, *, redshift: float, cosmology: CosmologyParams) -> FloatArray:
    """colossus' linear matter power spectrum ``D(z)^2 P_lin(k)`` in (Mpc/h)^3, k in h/Mpc."""
    cosmo = colossus_cosmology(cosmology)
    k = np.asarray(k_h_mpc, dtype=np.float64)
    k_table = np.geomspace(max(float(k.min()), 1e-4), float(k.max()) * 1.01, 512)
    p_table = cosmo.matterPowerSpectrum(k_table, z=redshift)
    return np.exp(np.interp(np.log(k), np.log(k_table), np.log(p_table)))


def web_for(
    config: WebConfig, *, box_mpc_h: float, redshift: float, cosmology: CosmologyParams, seed: int
) -> CosmicWeb | None:
    """The universe's web when ``config.enabled``, else ``None``."""
    if not config.enabled:
        return None
    return realise(
        config,
        box_mpc_h=box_mpc_h,
        redshift=redshift,
        cosmology=cosmology,
        seed=config.seed if config.seed is not None else seed,
    )


__all__ = ["CosmicWeb", "linear_power", "realise", "web_for"]
