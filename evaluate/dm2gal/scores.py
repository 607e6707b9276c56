"""How close a painted stellar-mass field is to the hydro run's: dm2gal's four scores.

Kasmanoff et al. (2020, §3) compare the predicted, HOD and simulated stellar-mass fields of the
test cube by their power spectrum, bispectrum (k1 = 3, k2 = 4 h/Mpc against the angle) and voxel
PDF, by eye (their Fig. 1; the paper prints no number). Their public code measures these with
Pylians on the stellar-mass cube itself (``Pk_library.Pk(test_cube, BoxSize, 0, None)``: the
mass field, not its overdensity, and no window deconvolution), and issue 18 turns the
comparison into numbers. Here, for a predicted field ``p`` and the truth ``t`` over one cube:

- **P(k) distance**: mean over k bins of ``|log10(P_p(k) / P_t(k))|``, k from
  ``k_min_fundamental`` k_F to ``k_max_nyquist`` k_N of the cube (2 k_F to k_N / 2: issue 18);
  P of the mass field, so a field scaled by ``c`` is ``2 |log10 c|`` away;
- **r(k) distance**: mean of ``1 - r(k)``, ``r = P_pt / sqrt(P_p P_t)``, over the same bins (or
  up to ``r_k_max_h_mpc``, 2 h/Mpc as issue 18 asks);
- **B(k) distance**: ``|B_p / B_t - 1|`` per angle of the triangle, and its mean; B of the mass
  field (scaling by ``c`` gives ``|c^3 - 1|``);
- **PDF distance**: mean over log-spaced bins of voxel stellar mass (the truth's smallest
  positive voxel up to the larger maximum) of ``|log10((n_p + 1) / (n_t + 1))|``, ``n`` the
  voxel counts of a bin (the paper's un-normalised PDF; the 1 keeps empty bins finite), over
  bins where either field has voxels.

Every statistic is :class:`~darkstack.features.fields.spectra.Spectra`'s (Pylians'
conventions, the cube measured as a periodic box of its own, as the paper measures its test
cube); mass-field spectra are the overdensity's times the mean's power (``delta_k = f_k /
mean`` for k != 0).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from numpy.typing import NDArray

from darkstack.config import Checked, Range, Rule
from darkstack.features.fields.config import SpectraConfig
from darkstack.features.fields.distance import (
    DECONVOLVE_WINDOW,
    K_MAX_NYQUIST,
    K_MIN_FUNDAMENTAL,
    power_distance,
    reference_power,
)
from darkstack.features.fields.spectra import Spectra

if TYPE_CHECKING:
    from distributed import Client

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class ScoresConfig(Checked):
    """Which scales and bins the dm2gal scores use.

    Parameters
    ----------
    k_min_fundamental : float
        Smallest k of the P(k) and r(k) distances, in units of the cube's k_F.
    k_max_nyquist : float
        Largest k of the P(k) and r(k) distances, as a fraction of the cube's k_N.
    r_k_max_h_mpc : float or None
        Largest k of the r(k) distance in h/Mpc, if lower than the P(k) range's (issue 18: 2;
        ``None``: the P(k) range's, for cubes whose 2 k_F exceeds it).
    triangle : (float, float)
        (k1, k2) of the bispectrum in h/Mpc (the paper's 3, 4).
    n_theta : int
        Angles between k1 and k2 over [0, pi] (25 in the public code).
    pdf_bins : int
        Log-spaced bins of the voxel PDF.
    deconvolve_window : bool
        Divide modes by the deposit's window (the public code does not: ``MAS=None``).
    """

    k_min_fundamental: Annotated[float, Range(gt=0)] = K_MIN_FUNDAMENTAL
    k_max_nyquist: Annotated[float, Range(gt=0, le=1)] = K_MAX_NYQUIST
    r_k_max_h_mpc: Annotated[float | None, Range(gt=0)] = 2.0
    triangle: tuple[float, float] = (3.0, 4.0)
    n_theta: Annotated[int, Range(ge=1)] = 25
    pdf_bins: Annotated[int, Range(ge=1)] = 30
    deconvolve_window: bool = DECONVOLVE_WINDOW

    RULES = (
        Rule(
            "triangle",
            lambda c: None if 0 < c.triangle[0] <= c.triangle[1] else "(k1, k2) with 0 < k1 <= k2",
        ),
    )


@dataclass(frozen=True)
class Dm2galScores:
    """The four distances of a predicted field from the truth, and the curves behind them.

    Attributes
    ----------
    pk_distance, r_distance, bk_distance, pdf_distance : float
        The scores (module docstring); 0 for a perfect prediction.
    k_h_mpc, pk_predicted, pk_truth : ndarray
        P(k) of the mass fields in the scored k range, (Mpc/h)^3 Msun^2.
    r : ndarray
        r(k) over the same k.
    r_k_h_mpc : ndarray
        k of the r(k) distance.
    theta_rad, bk_predicted, bk_truth, bk_relative : ndarray
        B(k1, k2, theta) of the mass fields and ``|B_p / B_t - 1|`` per angle.
    pdf_log10_msun, pdf_predicted, pdf_truth : ndarray
        Bin centres and voxel counts of the PDF.
    """

    pk_distance: float
    r_distance: float
    bk_distance: float
    pdf_distance: float
    k_h_mpc: FloatArray
    pk_predicted: FloatArray
    pk_truth: FloatArray
    r: FloatArray
    r_k_h_mpc: FloatArray
    theta_rad: FloatArray
    bk_predicted: FloatArray
    bk_truth: FloatArray
    bk_relative: FloatArray
    pdf_log10_msun: FloatArray
    pdf_predicted: FloatArray
    pdf_truth: FloatArray

    def summary(self) -> dict[str, float]:
        """The four scores by name."""
        return {
            "pk_distance": self.pk_distance,
            "r_distance": self.r_distance,
            "bk_distance": self.bk_distance,
            "pdf_distance": self.pdf_distance,
        }


def score(
    predicted: Any,
    truth: Any,
    *,
    box_mpc_h: float,
    scheme: str,
    config: ScoresConfig | None = None,
    client: Client | None = None,
) -> Dm2galScores:
    """Score a predicted stellar-mass cube against the true one.

    Parameters
    ----------
    predicted, truth : ndarray or dask.array, shape (n, n, n)
        Stellar mass per voxel (Msun) over the same cube.
    box_mpc_h : float
        Side of the cube in Mpc/h (comoving).
    scheme : {"ngp", "cic", "tsc"}
        The scheme both were deposited with.
    config : ScoresConfig, optional
        Scales and bins; the defaults above.
    client : distributed.Client, optional
        Where to compute; None uses threads here.

    Raises
    ------
    ValueError
        For cubes of different shapes, a field without mass, or a range holding no k bin.
    """
    config = config or ScoresConfig()
    if tuple(predicted.shape) != tuple(truth.shape):
        raise ValueError(f"predicted {predicted.shape} and truth {truth.shape} differ in shape")
    n = int(truth.shape[0])
    spectra = Spectra(
        config=SpectraConfig(
            deconvolve_window=config.deconvolve_window,
            triangles=(config.triangle,),
            n_theta=config.n_theta,
            pdf_bins=config.pdf_bins,
        ),
        box_mpc_h=box_mpc_h,
        scheme=scheme,
        client=client,
    )
    reference = reference_power(
        spectra,
        truth,
        k_min_fundamental=config.k_min_fundamental,
        k_max_nyquist=config.k_max_nyquist,
    )
    pk = power_distance(spectra, predicted, reference)
    mean_p, mean_t = pk.mean_predicted, reference.mean
    _, r = spectra.power([predicted, truth])
    k_f = 2.0 * np.pi / box_mpc_h
    in_range = reference.in_range
    r_range = in_range & (
        r.bins <= (config.r_k_max_h_mpc if config.r_k_max_h_mpc is not None else np.inf)
    )
    if not r_range.any():
        raise ValueError(
            f"no k bin of r(k) between {config.k_min_fundamental} k_F ("
            f"{config.k_min_fundamental * k_f:.3g} h/Mpc) and r_k_max_h_mpc="
            f"{config.r_k_max_h_mpc} of a {n}³ cube of {box_mpc_h:g} Mpc/h; expected a larger "
            "cube or r_k_max_h_mpc"
        )
    bk_p = spectra.bispectra(predicted)[0].values * mean_p**3
    bk_t_measure = spectra.bispectra(truth)[0]
    bk_t = bk_t_measure.values * mean_t**3
    with np.errstate(divide="ignore", invalid="ignore"):
        bk_relative = np.abs(bk_p / bk_t - 1.0)
    # One set of PDF bins for both fields, from the truth's smallest positive voxel.
    low, high = _pdf_range(predicted, truth)
    pdf = dataclasses.replace(
        spectra,
        config=dataclasses.replace(spectra.config, pdf_log10_min=low, pdf_log10_max=high),
    )
    pdf_p, pdf_t = pdf.pdf(predicted), pdf.pdf(truth)
    occupied = (pdf_p.counts > 0) | (pdf_t.counts > 0)
    return Dm2galScores(
        pk_distance=pk.distance,
        r_distance=float(np.mean(1.0 - r.values[r_range])),
        bk_distance=float(np.mean(bk_relative)),
        pdf_distance=float(
            np.mean(np.abs(np.log10((pdf_p.counts[occupied] + 1) / (pdf_t.counts[occupied] + 1))))
        ),
        k_h_mpc=reference.k_h_mpc,
        pk_predicted=pk.power_predicted,
        pk_truth=reference.power,
        r=r.values[in_range],
        r_k_h_mpc=r.bins[r_range],
        theta_rad=bk_t_measure.bins,
        bk_predicted=bk_p,
        bk_truth=bk_t,
        bk_relative=bk_relative,
        pdf_log10_msun=pdf_t.bins,
        pdf_predicted=pdf_p.counts,
        pdf_truth=pdf_t.counts,
    )


def _pdf_range(predicted: Any, truth: Any) -> tuple[float, float]:
    """log10 of the truth's smallest positive voxel and of the larger maximum (Msun)."""
    true = np.asarray(truth)
    positive = true[true > 0]
    low = float(np.log10(positive.min()))
    high = float(np.log10(max(float(np.max(predicted)), float(true.max()))))
    return low, max(high, low + 1e-6)
