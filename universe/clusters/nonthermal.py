"""Non-thermal (turbulent) pressure fraction of Nelson, Lau & Nagai (2014, ApJ 792, 25).

P_nt / P_tot = 1 - A (1 + exp(-(r / (B R200m))^g)), their eq. 7 with the best fit
A = 0.452, B = 0.841, g = 1.628 to the Omega500 clusters. The thermal pressure alone then
underestimates the mass in hydrostatic equilibrium: this is the hydrostatic mass bias.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

NELSON14_A = 0.452
NELSON14_B = 0.841
NELSON14_GAMMA = 1.628


def nelson14_fraction(r_over_r200m: ArrayLike) -> NDArray[np.float64]:
    """P_nt / P_tot at r / R200m (9.6% at the centre, rising outward)."""
    u = (np.asarray(r_over_r200m, dtype=np.float64) / NELSON14_B) ** NELSON14_GAMMA
    return 1.0 - NELSON14_A * (1.0 + np.exp(-u))


__all__ = ["nelson14_fraction"]
