"""The stellar-mass-only baseline: what the catalog's M* alone says about the profile.

Per radius, a polynomial in log10 M* (degree 2 by default) fitted by least squares to log10
M_DM(<R) of the training galaxies. A CNN that reads the images must beat it at every radius to
show it learned more than the stellar-to-halo mass relation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class StellarMassBaseline:
    """Polynomial coefficients per radius, highest power first, ``(n_radii, degree + 1)``."""

    coefficients: NDArray[np.float64]

    @classmethod
    def fit(
        cls,
        *,
        log10_mstar: NDArray[np.floating],
        log10_mdm: NDArray[np.floating],
        degree: int = 2,
    ) -> StellarMassBaseline:
        """Fit on ``log10_mstar`` ``(n,)`` and targets ``log10_mdm`` ``(n, n_radii)``."""
        x = np.asarray(log10_mstar, dtype=np.float64)
        y = np.asarray(log10_mdm, dtype=np.float64)
        if x.ndim != 1 or y.ndim != 2 or y.shape[0] != x.size:
            raise ValueError(
                f"log10_mstar {x.shape} and log10_mdm {y.shape}: expected (n,) and (n, n_radii)"
            )
        if x.size <= degree:
            raise ValueError(f"{x.size} galaxies cannot fit a degree-{degree} polynomial")
        coefficients = np.polynomial.polynomial.polyfit(x, y, degree)[::-1].T
        return cls(coefficients=np.ascontiguousarray(coefficients))

    def predict(self, log10_mstar: NDArray[np.floating]) -> NDArray[np.float64]:
        """log10 M_DM(<R) ``(n, n_radii)``."""
        x = np.asarray(log10_mstar, dtype=np.float64)
        powers = x[:, None] ** np.arange(self.coefficients.shape[1] - 1, -1, -1)[None, :]
        return np.asarray(powers @ self.coefficients.T, dtype=np.float64)
