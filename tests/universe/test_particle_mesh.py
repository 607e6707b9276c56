"""Particle-mesh gravity (``darkstack.universe.particle_mesh``) against exact solutions."""

from __future__ import annotations

import numpy as np
import pytest
from colossus.cosmology import cosmology as colossus

from darkstack.cosmology import TNG_COSMOLOGY
from darkstack.universe.particle_mesh import evolve

BOX = 100.0  # Mpc/h
#: Planck 2015 as TNG quotes it (Nelson et al. 2019, table 1), given to colossus directly.
PLANCK15_TNG = {"flat": True, "H0": 67.74, "Om0": 0.3089, "Ob0": 0.0486, "sigma8": 0.8159,
                "ns": 0.9667}  # fmt: skip


def _plane_wave(n: int, amplitude_mpc_h: float) -> np.ndarray:
    """A displacement along x, psi_x = A sin(2 pi q_x / L): one sheet per lattice plane."""
    q = np.arange(n) * BOX / n
    psi = np.zeros((3, n, n, n), dtype=np.float32)
    psi[0] = (amplitude_mpc_h * np.sin(2 * np.pi * q / BOX))[:, None, None]
    return psi


def _evolve_plane_wave(n: int, *, redshift: float) -> tuple[np.ndarray, ...]:
    # D psi' peaks at 0.3 at the end (density 0.77-1.43): no shell crossing.
    psi = _plane_wave(n, 0.3 * BOX / (2 * np.pi))
    displacement, velocity = evolve(
        psi, None, box_mpc_h=BOX, cosmology=TNG_COSMOLOGY, redshift=redshift,
        start_redshift=9.0, steps=10,
    )  # fmt: skip
    return psi, displacement, velocity


@pytest.mark.parametrize("redshift", [0.0, 1.0])
def test_a_plane_wave_follows_zeldovich_exactly_until_shell_crossing(redshift: float) -> None:
    # In one dimension the Zel'dovich approximation is the exact solution before shells cross
    # (Zel'dovich 1970): x = q + D psi, v = a H f D psi, with D and f from colossus here.
    # The mesh's error is a fixed fraction of its cell (~0.05 cells at most), so it halves
    # from 64 to 128 mesh cells a wavelength: measured 1.6% and 0.8% of the amplitude in x,
    # 1.2% of the largest velocity at 128.
    errors = []
    for n in (64, 128):
        psi, displacement, velocity = _evolve_plane_wave(n, redshift=redshift)
        amplitude = np.abs(psi[0]).max()
        errors.append(np.abs(displacement[0] - psi[0]).max() / amplitude)
        assert np.abs(displacement[1:]).max() < 1e-4 * amplitude
    assert errors[1] < 0.01
    assert errors[1] < 0.6 * errors[0]
    cosmo = colossus.setCosmology("planck15-tng-test", params=PLANCK15_TNG)
    a = 1 / (1 + redshift)
    # f = dlnD/dlna; H in km/s per Mpc/h is 100 E.
    f = -(1 + redshift) * cosmo.growthFactor(redshift, derivative=1) / cosmo.growthFactor(redshift)
    expected_v = a * 100.0 * cosmo.Ez(redshift) * f * psi[0]
    np.testing.assert_allclose(velocity[0], expected_v, atol=0.02 * np.abs(expected_v).max())


def test_a_start_after_the_snapshot_is_refused() -> None:
    psi = _plane_wave(8, 0.1)
    with pytest.raises(ValueError, match=r"particle_mesh_start_redshift=0\.5; expected above"):
        evolve(psi, None, box_mpc_h=BOX, cosmology=TNG_COSMOLOGY, redshift=1.0,
               start_redshift=0.5, steps=2)  # fmt: skip
