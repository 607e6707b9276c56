"""Physical constants and the solar reference values darkstack uses everywhere.

Units follow the names: ``_kpc``, ``_msun``, ``_kms``, ``_yr``, cgs where marked.
"""

from typing import Final

#: Newton's constant in kpc (km/s)^2 / Msun.
G_KPC_KMS2_PER_MSUN: Final = 4.300917270e-6
#: Proton mass in g.
PROTON_MASS_G: Final = 1.67262192e-24
#: Boltzmann constant in erg/K.
BOLTZMANN_ERG_PER_K: Final = 1.380649e-16
#: Solar mass in g.
MSUN_G: Final = 1.98841e33
#: Kiloparsec in cm.
KPC_CM: Final = 3.0856775814913673e21
#: Julian year in s.
YEAR_S: Final = 3.15576e7
#: Kilometre per second in cm/s.
KMS_CM_S: Final = 1.0e5
#: Primordial hydrogen mass fraction, as in IllustrisTNG (GFM_PRIMORDIAL_HYDROGEN_MASS_FRACTION).
HYDROGEN_MASS_FRACTION: Final = 0.76
#: Adiabatic index of a monatomic ideal gas.
GAMMA_IDEAL_GAS: Final = 5.0 / 3.0
#: Solar metal mass fraction used by IllustrisTNG (Asplund et al. 2009).
Z_SUN: Final = 0.0127
#: Solar oxygen abundance 12 + log(O/H) (Asplund et al. 2009).
SOLAR_OXYGEN_ABUNDANCE: Final = 8.69
#: Critical density of the Universe today in h^2 Msun / kpc^3.
RHO_CRIT0_H2_MSUN_PER_KPC3: Final = 277.536627
