"""Particle-mesh gravity for the cosmic web's lattice: FastPM's kick and drift (Feng et al. 2016).

Lagrangian perturbation theory lets shells cross, where gravity keeps collapsed matter
together: at z = 0 in a 50 Mpc/h box, at 0.13-0.25 h/Mpc, 2LPT gives 0.74 +- 0.08 of the power
of its own linear phases and ten particle-mesh steps 0.89 +- 0.10 (20 realisations each,
``docs/scripts/web_gravity_ensemble.py``; in a 200 Mpc/h box 0.85 and 1.14: a small box lacks
the longer modes whose coupling adds power there).

Units: comoving positions in Mpc/h, time in 1/H0, momentum ``p = a^2 dx/dt`` (Mpc/h times
H0). With ``F = -(3/2) Omega_m grad laplacian^-1 delta`` the equations of motion are
``dx/da = p / (a^3 E)`` and ``dp/da = F / (a^2 E)``. FastPM's factors make a step exact for
linear growth ``x = q + D psi``, whatever its length (Feng et al. 2016, MNRAS 463, 2273, §2.3):

- drift ``dx = p (D(a1) - D(a0)) / G_p(a)``, ``G_p = a^3 E dD/da`` (``p = G_p psi`` in linear
  theory);
- kick ``dp = F (G_p(a1) - G_p(a0)) / G_f(a)``, ``G_f = (3/2) Omega_m D`` (``F = G_f psi``).

Steps are uniform in ``a`` from the start, kick-drift-kick. The force is computed on a mesh
of the lattice's size by CIC deposit, FFT and CIC readout (:mod:`darkstack.features.deposit.
mesh`), without window compensation: it is exact on scales far above the mesh's cell, which
is what the web needs (halos are drawn separately, with their own profiles). The mesh's nodes
sit at the lattice's cell centres (see ``_Mesh.force``).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from darkstack.cosmology import CosmologyParams, colossus_cosmology
from darkstack.features.deposit.mesh import PIXEL_CENTRES, cell_coordinates, deposit, readout

FloatArray = NDArray[np.float64]
Modes = NDArray[np.floating[Any]]
#: km/s per (Mpc/h) H0 of comoving momentum over the scale factor: H0 = 100 h km/s/Mpc.
_KMS_PER_MPC_H_H0 = 100.0


class Growth:
    """Linear growth ``D(a)`` (1 at the snapshot), ``G_p`` and ``G_f``, from colossus.

    FastPM's steps reproduce ``x = q + D psi`` for whatever ``D`` they are given, so the
    growth is colossus' (which solves the growth equation of its cosmology).
    """

    def __init__(self, cosmology: CosmologyParams, *, a_final: float) -> None:
        self._cosmo = colossus_cosmology(cosmology)
        self.omega_m = cosmology.omega_m
        self._d_final = float(self._cosmo.growthFactor(1.0 / a_final - 1.0))

    def d(self, a: float) -> float:
        """Growth factor normalised to 1 at the snapshot."""
        return float(self._cosmo.growthFactor(1.0 / a - 1.0)) / self._d_final

    def dd_da(self, a: float) -> float:
        """dD/da, from colossus' dD/dz."""
        dd_dz = float(self._cosmo.growthFactor(1.0 / a - 1.0, derivative=1))
        return -dd_dz / (a * a * self._d_final)

    def e(self, a: float) -> float:
        """H(a) / H0."""
        return float(self._cosmo.Ez(1.0 / a - 1.0))

    def omega_m_at(self, a: float) -> float:
        """Omega_m(a)."""
        return float(self._cosmo.Om(1.0 / a - 1.0))

    def g_p(self, a: float) -> float:
        """``a^3 E dD/da``: a linear displacement's momentum per unit displacement."""
        return a**3 * self.e(a) * self.dd_da(a)

    def g_f(self, a: float) -> float:
        """``(3/2) Omega_m D``: a linear displacement's force per unit displacement."""
        return 1.5 * self.omega_m * self.d(a)


def evolve(
    psi1: NDArray[np.float32],
    psi2: NDArray[np.float32] | None,
    *,
    box_mpc_h: float,
    cosmology: CosmologyParams,
    redshift: float,
    start_redshift: float,
    steps: int,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Move a lattice from 2LPT at ``start_redshift`` to ``redshift`` by particle-mesh steps.

    Parameters
    ----------
    psi1 : ndarray of float32, shape (3, n, n, n)
        Zel'dovich displacement (Mpc/h) of every lattice point, linear at ``redshift``.
    psi2 : ndarray of float32, shape (3, n, n, n), or None
        Second-order displacement at ``redshift`` (``D2 psi2`` with ``D2 = -3/7 D1^2
        Omega_m^(-1/143)``), or None for Zel'dovich initial conditions.
    box_mpc_h : float
        Comoving side of the periodic box.
    cosmology : CosmologyParams
        The background and growth.
    redshift, start_redshift : float
        Where the particles end and where the steps start.
    steps : int
        Number of kick-drift-kick steps, uniform in the scale factor.

    Returns
    -------
    displacement : ndarray of float32, shape (3, n, n, n)
        ``x - q`` at ``redshift``, the periodic image nearest the lattice point (Mpc/h).
    velocity_kms : ndarray of float32, shape (3, n, n, n)
        Peculiar velocities ``a dx/dt``.
    """
    n = psi1.shape[1]
    if not start_redshift > redshift:
        raise ValueError(
            f"particle_mesh_start_redshift={start_redshift:g}; expected above the snapshot's "
            f"redshift {redshift:g}"
        )
    a_final, a_start = 1.0 / (1.0 + redshift), 1.0 / (1.0 + start_redshift)
    growth = Growth(cosmology, a_final=a_final)
    # 2LPT at the start: D2 scales as D1^2 Omega^(-1/143), its rate by finite difference.
    d1, dd1 = growth.d(a_start), growth.dd_da(a_start)
    d2 = _d2(growth, a_start, a_final)
    eps = 1e-4 * a_start
    d2_rate = (_d2(growth, a_start + eps, a_final) - _d2(growth, a_start - eps, a_final)) / (
        2 * eps
    )
    scale = a_start**3 * growth.e(a_start)
    positions = (psi1 * np.float32(d1)).reshape(3, -1)
    momentum = (psi1 * np.float32(scale * dd1)).reshape(3, -1)
    if psi2 is not None:
        positions += (psi2 * np.float32(d2)).reshape(3, -1)
        momentum += (psi2 * np.float32(scale * d2_rate)).reshape(3, -1)
    positions += _lattice_coordinates(n, box_mpc_h)  # x = q + psi, float32 Mpc/h
    mesh = _Mesh(n, box_mpc_h, growth.omega_m)
    a_grid = np.linspace(a_start, a_final, steps + 1)
    force = mesh.force(positions)
    for a0, a1 in itertools.pairwise(a_grid):
        a_half = 0.5 * (a0 + a1)
        momentum += force * np.float32((growth.g_p(a_half) - growth.g_p(a0)) / growth.g_f(a0))
        positions += momentum * np.float32((growth.d(a1) - growth.d(a0)) / growth.g_p(a_half))
        np.mod(positions, np.float32(box_mpc_h), out=positions)
        force = mesh.force(positions)
        momentum += force * np.float32((growth.g_p(a1) - growth.g_p(a_half)) / growth.g_f(a1))
    # The lattice again rather than kept: at 512^3 it is 1.6 GB of a ~19 GB peak.
    displacement = positions - _lattice_coordinates(n, box_mpc_h)
    displacement -= np.float32(box_mpc_h) * np.round(displacement / np.float32(box_mpc_h))
    velocity = momentum * np.float32(_KMS_PER_MPC_H_H0 / a_final)
    return displacement.reshape(3, n, n, n), velocity.reshape(3, n, n, n)


def _d2(growth: Growth, a: float, a_final: float) -> float:
    """Second-order growth relative to the snapshot's (the factor of the final ``psi2``)."""
    ratio = growth.omega_m_at(a) / growth.omega_m_at(a_final)
    return growth.d(a) ** 2 * ratio ** (-1.0 / 143.0)


def _lattice_coordinates(n: int, box_mpc_h: float) -> NDArray[np.float32]:
    """(3, n^3) Lagrangian positions of the lattice points, in lattice order."""
    axis = np.arange(n, dtype=np.float32) * np.float32(box_mpc_h / n)
    out = np.empty((3, n, n, n), dtype=np.float32)
    out[0] = axis[:, None, None]
    out[1] = axis[None, :, None]
    out[2] = axis[None, None, :]
    return out.reshape(3, -1)


def fourier_grid(n: int, box_mpc_h: float) -> tuple[tuple[Modes, ...], FloatArray]:
    """The wavevector (h/Mpc) of an ``n^3`` box's ``rfftn`` modes, as three broadcastable axes,
    and ``k^2`` with its DC mode set to 1 (so dividing by it leaves the DC mode finite)."""
    k = 2.0 * np.pi / box_mpc_h * np.fft.fftfreq(n, 1.0 / n)
    kz = 2.0 * np.pi / box_mpc_h * np.fft.rfftfreq(n, 1.0 / n)
    k2 = np.asarray(
        k[:, None, None] ** 2 + k[None, :, None] ** 2 + kz[None, None, :] ** 2, np.float64
    )
    k2[0, 0, 0] = 1.0
    return (k[:, None, None], k[None, :, None], kz[None, None, :]), k2


class _Mesh:
    """The force ``-(3/2) Omega_m grad laplacian^-1 delta`` of particles on an n^3 mesh."""

    def __init__(self, n: int, box_mpc_h: float, omega_m: float) -> None:
        self.n, self.box = n, box_mpc_h
        self.wavevector, k2 = fourier_grid(n, box_mpc_h)
        self.gain = 1.5 * omega_m / k2  # F_k = i k (3/2) Omega_m delta_k / k^2
        self.gain[0, 0, 0] = 0.0

    def force(self, positions: NDArray[np.float32]) -> NDArray[np.float32]:
        """(3, N) force at (3, N) positions (Mpc/h, inside the box)."""
        # The mesh's nodes sit at the lattice's cell centres: with nodes on the lattice points,
        # CIC turns a small displacement into a one-sided difference, whose side follows the
        # displacement's sign (a plane wave's force then errs by 10% at 32 cells a wavelength,
        # against 0.2% here). float64 once: deposit and the three readouts take it as it is.
        cells = cell_coordinates(
            positions.T, cell_size=self.box / self.n, cell_offset=PIXEL_CENTRES
        )
        density = deposit(cells, shape=(self.n,) * 3, scheme="cic")
        density *= density.size / positions.shape[1]
        density_k = np.fft.rfftn(density)
        del density
        density_k *= self.gain
        out = np.empty_like(positions)
        for axis, k in enumerate(self.wavevector):
            component = np.fft.irfftn(1j * k * density_k, s=(self.n,) * 3, axes=(0, 1, 2))
            out[axis] = readout(cells, component, scheme="cic")
        return out


__all__ = ["Growth", "evolve", "fourier_grid"]
