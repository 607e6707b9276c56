"""Which subhalos are galaxies of the sample: the paper's Table 1, read from the group catalog.

de los Rios et al. (2023), Table 1: snapshot 99; 1e10 <= M* <= 1e12 Msun; SFR >= 0.1 Msun/yr;
central galaxies (SubhaloParent = 0 as the paper states, and the subhalo is its group's
GroupFirstSub, because TNG also gives satellites of the central SubhaloParent = 0); and
SubhaloFlag = 1 (cosmological origin). M* is the subhalo's total stellar mass
(SubhaloMassType[4]), SFR is SubhaloSFR.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from numpy.typing import NDArray

from darkstack.config import Checked, Range, Rule
from darkstack.units import MASS_UNIT_MSUN_PER_H

#: Group-catalog fields the selection reads.
SUBHALO_FIELDS = ("SubhaloMassType", "SubhaloSFR", "SubhaloParent", "SubhaloGrNr", "SubhaloFlag")
GROUP_FIELDS = ("GroupFirstSub",)
STARS = 4


@dataclass(frozen=True, kw_only=True)
class SelectionConfig(Checked):
    """Selection criteria (defaults: the paper's Table 1).

    Parameters
    ----------
    stellar_mass_min_msun, stellar_mass_max_msun : float
        Range of the subhalo's stellar mass.
    sfr_min_msun_yr : float
        Minimum star-formation rate.
    centrals_only : bool
        Keep only subhalos with SubhaloParent = 0 that are their group's GroupFirstSub.
    require_cosmological_origin : bool
        Keep only SubhaloFlag = 1.
    """

    stellar_mass_min_msun: Annotated[float, Range(gt=0)] = 1.0e10
    stellar_mass_max_msun: Annotated[float, Range(gt=0)] = 1.0e12
    sfr_min_msun_yr: Annotated[float, Range(ge=0)] = 0.1
    centrals_only: bool = True
    require_cosmological_origin: bool = True

    RULES = (Rule.ordered("stellar_mass_min_msun", "<=", "stellar_mass_max_msun", spec=".4g"),)


def select_subhalos(
    subhalos: Mapping[str, NDArray[np.generic]],
    groups: Mapping[str, NDArray[np.generic]],
    *,
    hubble_param: float,
    config: SelectionConfig,
) -> NDArray[np.int64]:
    """Indices of the subhalos that pass the selection, in increasing order.

    Parameters
    ----------
    subhalos, groups : mapping
        Group-catalog columns (at least :data:`SUBHALO_FIELDS` and :data:`GROUP_FIELDS`), as
        ``illustris_python.groupcat.loadSubhalos`` / ``loadHalos`` return them, in code units.
    hubble_param : float
        h of the simulation, to convert 1e10 Msun/h to Msun.
    config : SelectionConfig
        The criteria.
    """
    stellar_mass = (
        np.asarray(subhalos["SubhaloMassType"])[:, STARS] * MASS_UNIT_MSUN_PER_H / hubble_param
    )
    keep = (
        (stellar_mass >= config.stellar_mass_min_msun)
        & (stellar_mass <= config.stellar_mass_max_msun)
        & (np.asarray(subhalos["SubhaloSFR"]) >= config.sfr_min_msun_yr)
    )
    if config.centrals_only:
        first_sub = np.asarray(groups["GroupFirstSub"])[np.asarray(subhalos["SubhaloGrNr"])]
        keep &= (np.asarray(subhalos["SubhaloParent"]) == 0) & (
            first_sub == np.arange(stellar_mass.size)
        )
    if config.require_cosmological_origin:
        keep &= np.asarray(subhalos["SubhaloFlag"]) == 1
    return np.flatnonzero(keep).astype(np.int64)
