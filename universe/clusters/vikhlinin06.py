"""The gas density profile of Vikhlinin et al. (2006, ApJ 640, 691), their eq. 3.

n_p n_e = n0^2 (r/rc)^-alpha / (1 + r^2/rc^2)^(3 beta - alpha/2) / (1 + r^g/rs^g)^(eps/g)
          + n02^2 / (1 + r^2/rc2^2)^(3 beta2),
with g = 3 fixed as in the paper. Radii here are in units of R500, so one shape serves clusters
of every mass; the amplitude is set by the gas mass (:mod:`.gas_fraction`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Vikhlinin06Shape:
    """Shape parameters of eq. 3 with radii in units of R500.

    The defaults lie inside the ranges of their Table 2 and were chosen (a bounded fit, once,
    at four masses 10^13.5-10^15 Msun) so that the gas in hydrostatic equilibrium in an NFW
    halo with the Nelson et al. (2014) non-thermal pressure has an electron pressure close to
    Arnaud et al. (2010)'s profile from 0.03 to 2 R500 (0.12-0.16 dex rms; docs/cluster_mass.md).
    They are not a fit published by Vikhlinin et al.
    """

    rc: float = 0.064
    alpha: float = 0.0
    beta: float = 0.584
    rs: float = 2.14
    epsilon: float = 2.36
    gamma: float = 3.0
    n02_ratio: float = 0.0
    rc2: float = 0.02
    beta2: float = 1.0

    def __post_init__(self) -> None:
        for name in ("rc", "rs", "rc2", "gamma"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Vikhlinin06Shape.{name} = {getattr(self, name)}; expected > 0")
        if self.epsilon >= 5.0:
            # The paper constrains eps < 5 so the profile does not steepen unphysically.
            raise ValueError(f"Vikhlinin06Shape.epsilon = {self.epsilon}; expected < 5")


VIKHLININ06 = Vikhlinin06Shape()


def emission_measure_shape(x: ArrayLike, *, shape: Vikhlinin06Shape = VIKHLININ06) -> FloatArray:
    """n_p n_e / n0^2 at x = r / R500 (eq. 3)."""
    xs = np.asarray(x, dtype=np.float64)
    u = xs / shape.rc
    main = (
        u ** (-shape.alpha)
        / (1.0 + u**2) ** (3.0 * shape.beta - shape.alpha / 2.0)
        / (1.0 + (xs / shape.rs) ** shape.gamma) ** (shape.epsilon / shape.gamma)
    )
    core = shape.n02_ratio**2 / (1.0 + (xs / shape.rc2) ** 2) ** (3.0 * shape.beta2)
    return main + core


def density_shape(x: ArrayLike, *, shape: Vikhlinin06Shape = VIKHLININ06) -> FloatArray:
    """Gas density up to a constant: the square root of eq. 3 (n_e / n_p is constant)."""
    return np.sqrt(emission_measure_shape(x, shape=shape))


def log_slope(x: ArrayLike, *, shape: Vikhlinin06Shape = VIKHLININ06) -> FloatArray:
    """d ln rho_gas / d ln r, by a centred difference in ln r (relative step 1e-4)."""
    xs = np.asarray(x, dtype=np.float64)
    step = 1.0e-4
    up = np.log(density_shape(xs * np.exp(step), shape=shape))
    down = np.log(density_shape(xs * np.exp(-step), shape=shape))
    return (up - down) / (2.0 * step)


__all__ = [
    "VIKHLININ06",
    "Vikhlinin06Shape",
    "density_shape",
    "emission_measure_shape",
    "log_slope",
]
