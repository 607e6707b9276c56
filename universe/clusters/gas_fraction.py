"""Gas mass fraction inside R500 rising with mass: Vikhlinin et al. (2009, ApJ 692, 1033).

f_gas(<R500) = 0.125 + 0.037 log10(M500 / 1e15 h^-1 Msun), their fit to the
Chandra cluster sample, for h = 0.72 (the fit is capped below the cosmic baryon fraction).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Intercept and slope of the Vikhlinin et al. 2009 relation, and the h they assumed.
V09_INTERCEPT = 0.125
V09_SLOPE = 0.037
V09_HUBBLE_PARAM = 0.72


def vikhlinin09_gas_fraction(
    m500_msun: ArrayLike, *, cap: float | None = None
) -> NDArray[np.float64]:
    """f_gas inside R500 at M500 (Msun); ``cap`` (e.g. Omega_b / Omega_m) bounds it above."""
    m15 = np.asarray(m500_msun, dtype=np.float64) * V09_HUBBLE_PARAM / 1.0e15
    fraction = V09_INTERCEPT + V09_SLOPE * np.log10(m15)
    return fraction if cap is None else np.minimum(fraction, cap)


__all__ = ["vikhlinin09_gas_fraction"]
