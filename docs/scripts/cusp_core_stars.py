"""Write star tables of a mock cusp and a mock core for ``darkstack predict --task cusp_core``.

Independent of darkstack's training data path: the halo is galpy's (1, 3, gamma) two-power
sphere (a generalised NFW), the light galpy's Dehnen sphere, velocities from galpy's isotropic
Eddington DF, and positions are put on the sky with astropy. The printed slope at 150 pc is
what ``predict`` should recover.

    python docs/scripts/cusp_core_stars.py OUT_DIR
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord
from galpy.df import eddingtondf
from galpy.potential import DehnenSphericalPotential, TwoPowerSphericalPotential

G = 4.300917e-6  # kpc (km/s)^2 / Msun
VO = 100.0  # galpy velocity unit (km/s); lengths in kpc
DISTANCE_KPC = 80.0
CENTRE = SkyCoord(150.0 * u.deg, 20.0 * u.deg)
N_STARS = 2000


def stars(inner_slope: float, *, seed: int) -> tuple[pd.DataFrame, float]:
    scale_kpc, mass_msun = 2.0, 3.0e9  # mass of the two-power sphere's normalisation
    halo = TwoPowerSphericalPotential(
        amp=mass_msun * G / VO**2, a=scale_kpc, alpha=inner_slope, beta=3.0
    )
    light = DehnenSphericalPotential(amp=1.0, a=0.4, alpha=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = eddingtondf(pot=halo, denspot=light, rmax=20.0, scale=0.4)
        np.random.seed(seed)  # noqa: NPY002 (galpy draws from the global state)
        orbits = df.sample(n=N_STARS)
    x, y = orbits.x(use_physical=False), orbits.y(use_physical=False)
    v_los = VO * orbits.vz(use_physical=False) + 120.0
    offset = SkyCoord(
        lon=x / DISTANCE_KPC * u.rad, lat=y / DISTANCE_KPC * u.rad, frame=CENTRE.skyoffset_frame()
    ).icrs
    r = 0.15 / scale_kpc
    slope = -(inner_slope + (3.0 - inner_slope) * r / (1.0 + r))
    frame = pd.DataFrame({"ra_deg": offset.ra.deg, "dec_deg": offset.dec.deg, "v_los_kms": v_los})
    return frame, slope


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for cusp.csv and core.csv")
    out = parser.parse_args().out_dir
    out.mkdir(parents=True, exist_ok=True)
    for name, gamma in (("cusp", 1.0), ("core", 0.0)):
        frame, slope = stars(gamma, seed=int(10 * gamma))
        frame.to_csv(out / f"{name}.csv", index=False)
        print(f"{out / name}.csv: slope at 150 pc {slope:.3f}, distance {DISTANCE_KPC} kpc")
