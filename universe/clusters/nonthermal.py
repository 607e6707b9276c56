"""Non-thermal (turbulent) pressure fraction of Nelson, Lau & Nagai (2014, ApJ 792, 25).

P_nt / P_tot = 1 - A (1 + exp(-(r / (B R200m))^g)), their eq. 7 with the best fit
A = 0.452, B = 0.841, g = 1.628 to the Omega500 clusters. The thermal pressure alone then
underestimates the mass in hydrostatic equilibrium: this is the hydrostatic mass bias.
Individual clusters scatter about the fit (turbulence reaches further in after a merger);
``b`` moves the radius where the fraction rises while keeping its 9.6% floor and 54.8% ceiling.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

NELSON14_A = 0.452
NELSON14_B = 0.841
NELSON14_GAMMA = 1.628


def nelson14_fraction(r_over_r200m: ArrayLike, *, b: float = NELSON14_B) -> NDArray[np.float64]:
    """P_nt / P_tot at r / R200m (9.6% at the centre, rising outward beyond ~``b`` R200m)."""
    u = (np.asarray(r_over_r200m, dtype=np.float64) / b) ** NELSON14_GAMMA
    return 1.0 - NELSON14_A * (1.0 + np.exp(-u))


__all__ = ["NELSON14_B", "nelson14_fraction"]
