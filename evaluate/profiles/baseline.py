"""Baselines the CNN is compared to: what M* alone, or the photometry alone, says of the profile.

Both are least-squares fits of log10 M_DM(<R), per radius, on the training samples:

- **stellar mass** (the issue's baseline): a polynomial in the catalog's log10 M*. It is handed
  the simulation's true M*, which no observer has, so it is an oracle for the stellar-to-halo
  mass relation; a CNN that beats it learned more than that relation *and* out-measured M*.
- **photometric**: a polynomial in log10 of the r-band luminosity plus the g-r colour, both from
  the same mock images the CNN reads, at the view's exact distance. Linear in g-r, it is an
  M* from a colour mass-to-light ratio (Bell et al. 2003) fed to the stellar-mass baseline,
  fitted end to end: what an observer with perfect distances gets from the photometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class LeastSquaresBaseline:
    """Coefficients per radius over the columns of a design matrix, ``(n_features, n_radii)``."""

    coefficients: NDArray[np.float64]

    @classmethod
    def fit(
        cls, *, design: NDArray[np.floating], log10_mdm: NDArray[np.floating]
    ) -> LeastSquaresBaseline:
        """Fit on a design matrix ``(n, n_features)`` and targets ``log10_mdm`` ``(n, n_radii)``."""
        x = np.asarray(design, dtype=np.float64)
        y = np.asarray(log10_mdm, dtype=np.float64)
        if x.ndim != 2 or y.ndim != 2 or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"design {x.shape} and log10_mdm {y.shape}: expected (n, n_features) and "
                "(n, n_radii)"
            )
        if x.shape[0] <= x.shape[1]:
            raise ValueError(f"{x.shape[0]} samples cannot fit {x.shape[1]} coefficients")
        coefficients, *_ = np.linalg.lstsq(x, y, rcond=None)
        return cls(coefficients=np.ascontiguousarray(coefficients))

    def predict(self, design: NDArray[np.floating]) -> NDArray[np.float64]:
        """log10 M_DM(<R) ``(n, n_radii)``."""
        return np.asarray(np.asarray(design, dtype=np.float64) @ self.coefficients)


def stellar_mass_design(log10_mstar: NDArray[np.floating], *, degree: int) -> NDArray[np.float64]:
    """Columns ``1, x, ..., x**degree`` of ``x = log10 M*`` ``(n,)``."""
    x = np.asarray(log10_mstar, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"log10_mstar has shape {x.shape}; expected (n,)")
    return np.vander(x, degree + 1, increasing=True)


def photometric_design(
    *,
    flux_g_nanomaggies: NDArray[np.floating],
    flux_r_nanomaggies: NDArray[np.floating],
    distance_mpc: NDArray[np.floating],
    degree: int,
    sample_ids: NDArray[np.integer] | None = None,
) -> NDArray[np.float64]:
    """Columns ``1, l, ..., l**degree, g - r``, ``l`` log10 of the r-band luminosity.

    ``l`` is ``log10(f_r D**2)`` in units of nanomaggies Mpc², a constant away from log10 L_r,
    which the intercept absorbs.

    ``sample_ids`` (one per row) only name the offending sample in errors.

    Raises
    ------
    ValueError
        When a flux or distance is not positive and finite (the sample and value are named).
    """
    values = {
        "flux_g_nanomaggies": np.asarray(flux_g_nanomaggies, dtype=np.float64),
        "flux_r_nanomaggies": np.asarray(flux_r_nanomaggies, dtype=np.float64),
        "distance_mpc": np.asarray(distance_mpc, dtype=np.float64),
    }
    for name, value in values.items():
        bad = np.flatnonzero(~(np.isfinite(value) & (value > 0)))
        if bad.size:
            row = int(bad[0])
            where = f"sample {sample_ids[row]}" if sample_ids is not None else f"row {row}"
            raise ValueError(
                f"{name} must be positive and finite for the photometric baseline; {where} "
                f"has {value[row]}"
            )
    log_luminosity = np.log10(values["flux_r_nanomaggies"] * values["distance_mpc"] ** 2)
    g_minus_r = -2.5 * np.log10(values["flux_g_nanomaggies"] / values["flux_r_nanomaggies"])
    return np.column_stack([np.vander(log_luminosity, degree + 1, increasing=True), g_minus_r])
