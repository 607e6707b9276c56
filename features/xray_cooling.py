"""Bolometric X-ray cooling function Lambda(T, Z) of Sutherland & Dopita (1993), CIE.

The eight CIE tables of SD93 (primordial and [Fe/H] = -3 ... +0.5, log T = 4-8.5 in steps of
0.05) ship as ``data/sd93/*.cie`` (their source in each file's header). Lambda is returned in
the convention emissivity = n_e n_H Lambda (erg s^-1 cm^-3), which is what the tables' net
cooling at n_H = 1 cm^-3 divided by their n_e gives. Between tables Lambda is interpolated
linearly in Z (metal line cooling is proportional to the metal abundance at fixed T), within
a table linearly in log Lambda against log T. Outside the tables: below 10^4 K the gas is
neutral and Lambda = 0; above 10^8.5 K free-free dominates and Lambda grows as sqrt(T).

Metallicity is a metal mass fraction (TNG's GFM_Metallicity) relative to SD93's solar
mixture, Anders & Grevesse (1989), whose metal mass fraction is 0.02 (``SD93_SOLAR_Z``; not
TNG's Z_sun = 0.0127, which is Asplund et al. 2009).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

#: Metal mass fraction of SD93's solar abundances (Anders & Grevesse 1989).
SD93_SOLAR_Z = 0.02
#: Table files and their [Fe/H] (None: primordial, Z = 0), in increasing metallicity.
SD93_TABLES = (
    ("mzero", None),
    ("m-30", -3.0),
    ("m-20", -2.0),
    ("m-15", -1.5),
    ("m-10", -1.0),
    ("m-05", -0.5),
    ("m-00", 0.0),
    ("m+05", 0.5),
)
_LOG_T_MIN, _LOG_T_MAX = 4.0, 8.5
_LOG_T_GRID = np.round(np.arange(_LOG_T_MIN, _LOG_T_MAX + 0.025, 0.05), 2)


def read_sd93_table(name: str) -> tuple[FloatArray, FloatArray]:
    """log10 T (K) and Lambda (erg cm^3 s^-1, per n_e n_H) of one SD93 CIE file."""
    text = (files("darkstack.features") / "data" / "sd93" / f"{name}.cie").read_text()
    rows = []
    for line in text.splitlines():
        fields = line.split()
        # Data rows start with log T; the headers ("#", "Cooling Curve", "log(T)") do not.
        if len(fields) >= 6 and fields[0][0].isdigit():
            rows.append([float(value) for value in fields[:6]])
    table = np.array(rows)
    log_t, n_e, n_h, log_net = table[:, 0], table[:, 1], table[:, 2], table[:, 4]
    return log_t, 10.0**log_net / (n_e * n_h)


@cache
def _grid() -> tuple[FloatArray, FloatArray]:
    """Z / Z_sun of each table and log10 Lambda on the common log T grid (table, T)."""
    z = np.array([0.0 if fe_h is None else 10.0**fe_h for _, fe_h in SD93_TABLES])
    log_lambda = []
    for name, _ in SD93_TABLES:
        log_t, cooling = read_sd93_table(name)
        # m+05 starts at log T = 4.1 (charge exchange, SD93): its first value is held below.
        log_lambda.append(np.interp(_LOG_T_GRID, log_t, np.log10(cooling)))
    return z, np.array(log_lambda)


def sd93_cooling_erg_cm3_s(temperature_k: ArrayLike, metallicity: ArrayLike) -> FloatArray:
    """Lambda(T, Z) in erg cm^3 s^-1 with emissivity n_e n_H Lambda.

    Parameters
    ----------
    temperature_k : array_like
        Gas temperature.
    metallicity : array_like
        Metal mass fraction (broadcast against ``temperature_k``); beyond the richest table
        ([Fe/H] = +0.5) it is held there.
    """
    t, metals = np.broadcast_arrays(
        np.asarray(temperature_k, dtype=np.float64), np.asarray(metallicity, dtype=np.float64)
    )
    z_tables, log_lambda = _grid()
    log_t = np.log10(np.maximum(t, 1.0))
    clipped = np.clip(log_t, _LOG_T_MIN, _LOG_T_MAX)
    position = (clipped - _LOG_T_MIN) / 0.05
    low = np.minimum(np.floor(position).astype(int), len(_LOG_T_GRID) - 2)
    frac_t = position - low
    z = np.clip(metals / SD93_SOLAR_Z, 0.0, z_tables[-1])
    table = np.clip(np.searchsorted(z_tables, z, side="right") - 1, 0, len(z_tables) - 2)
    frac_z = (z - z_tables[table]) / (z_tables[table + 1] - z_tables[table])

    def at(row: NDArray[np.int_]) -> FloatArray:
        return 10.0 ** ((1.0 - frac_t) * log_lambda[row, low] + frac_t * log_lambda[row, low + 1])

    cooling = (1.0 - frac_z) * at(table) + frac_z * at(table + 1)
    # Free-free beyond the tables' hot end; no CIE emission from neutral gas below 10^4 K.
    cooling = np.where(log_t > _LOG_T_MAX, cooling * 10.0 ** (0.5 * (log_t - _LOG_T_MAX)), cooling)
    return np.where(log_t < _LOG_T_MIN, 0.0, cooling)


__all__ = ["SD93_SOLAR_Z", "SD93_TABLES", "read_sd93_table", "sd93_cooling_erg_cm3_s"]
