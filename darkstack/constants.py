"""Physical constants and the solar reference values darkstack uses everywhere.

Units follow the names: ``_kpc``, ``_msun``, ``_kms``, ``_yr``, cgs where marked. Physical
constants come from astropy (CODATA and IAU values of the installed release) converted once to
these units; the simulation conventions below them (TNG's hydrogen fraction, solar abundances)
are literature numbers.
"""

import math
from typing import Final

import astropy.constants as _const
import astropy.units as _u

#: Newton's constant in kpc (km/s)^2 / Msun (G M_sun is IAU 2015's nominal value exactly).
G_KPC_KMS2_PER_MSUN: Final = float((_const.G * _u.Msun / _u.kpc).to_value((_u.km / _u.s) ** 2))
#: Proton mass in g.
PROTON_MASS_G: Final = float(_const.m_p.cgs.value)
#: Boltzmann constant in erg/K.
BOLTZMANN_ERG_PER_K: Final = float(_const.k_B.cgs.value)
#: Solar mass in g.
MSUN_G: Final = float(_u.Msun.to(_u.g))
#: Kiloparsec in cm.
KPC_CM: Final = float(_u.kpc.to(_u.cm))
#: Julian year in s.
YEAR_S: Final = float(_u.yr.to(_u.s))
#: Kilometre per second in cm/s.
KMS_CM_S: Final = float((_u.km / _u.s).to(_u.cm / _u.s))
#: Critical density of the Universe today in h^2 Msun / kpc^3: 3 H0^2 / (8 pi G), H0 = 100 h.
RHO_CRIT0_H2_MSUN_PER_KPC3: Final = float(
    (3.0 * (100.0 * _u.km / _u.s / _u.Mpc) ** 2 / (8.0 * math.pi * _const.G)).to_value(
        _u.Msun / _u.kpc**3
    )
)
#: Primordial hydrogen mass fraction, as in IllustrisTNG (GFM_PRIMORDIAL_HYDROGEN_MASS_FRACTION).
HYDROGEN_MASS_FRACTION: Final = 0.76
#: Adiabatic index of a monatomic ideal gas.
GAMMA_IDEAL_GAS: Final = 5.0 / 3.0
#: Solar metal mass fraction used by IllustrisTNG (Asplund et al. 2009).
Z_SUN: Final = 0.0127
#: Solar oxygen abundance 12 + log(O/H) (Asplund et al. 2009).
SOLAR_OXYGEN_ABUNDANCE: Final = 8.69
#: Thomson cross-section in cm^2.
THOMSON_CROSS_SECTION_CM2: Final = float(_const.sigma_T.cgs.value)
#: Electron rest energy m_e c^2 in erg.
ELECTRON_REST_ENERGY_ERG: Final = float((_const.m_e * _const.c**2).cgs.value)
#: One keV in erg.
KEV_ERG: Final = float(_u.keV.to(_u.erg))
#: Megaparsec in cm.
MPC_CM: Final = float(_u.Mpc.to(_u.cm))
