"""dm2gal's scores (evaluate/dm2gal/scores.py) against their definitions and plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

from darkstack.config import SettingError
from darkstack.evaluate.dm2gal.scores import ScoresConfig, score

N = 24
BOX = 6.0  # Mpc/h: k_F ~ 1.05, k_N ~ 12.6 h/Mpc, the paper's (3, 4) triangle fits
# r(k) over the whole P(k) range: these cubes are too small for k < 2 h/Mpc.
CONFIG = ScoresConfig(n_theta=5, pdf_bins=12, r_k_max_h_mpc=None)


def _sparse_field(seed: int) -> np.ndarray:
    """A stellar-mass-like cube: most voxels empty, lognormal masses in the rest."""
    rng = np.random.default_rng(seed)
    occupied = rng.random((N, N, N)) < 0.15
    return np.where(occupied, 10 ** rng.normal(9.0, 0.7, (N, N, N)), 0.0)


def test_identical_fields_score_zero() -> None:
    truth = _sparse_field(1)
    scores = score(truth.copy(), truth, box_mpc_h=BOX, scheme="cic", config=CONFIG)
    assert scores.pk_distance == 0.0
    assert scores.bk_distance == 0.0
    assert scores.pdf_distance == 0.0
    assert scores.r_distance == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("factor", [0.5, 3.0])
def test_a_scaled_field_is_its_known_distance_away(factor: float) -> None:
    truth = _sparse_field(2)
    scores = score(factor * truth, truth, box_mpc_h=BOX, scheme="cic", config=CONFIG)
    # P of the mass field scales as c^2, B as c^3; r(k) of a field and its multiple is 1.
    assert scores.pk_distance == pytest.approx(2 * abs(np.log10(factor)), rel=1e-10)
    np.testing.assert_allclose(scores.bk_relative, abs(factor**3 - 1), rtol=1e-8)
    np.testing.assert_allclose(scores.r, 1.0, rtol=1e-12)
    assert scores.pdf_distance > 0


def _numpy_power(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean k (h/Mpc), <|a_k|^2>, <|b_k|^2>, <Re a_k b_k*> per bin floor(|k| / k_F), DC dropped,
    over every mode of numpy's complex FFT (a mode and its mirror weigh the same)."""
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    n = np.fft.fftfreq(N, d=1.0 / N)
    kx, ky, kz = np.meshgrid(n, n, n, indexing="ij")
    k = np.sqrt(kx**2 + ky**2 + kz**2).ravel()
    index = k.astype(int)
    count = np.bincount(index)

    def mean(values: np.ndarray) -> np.ndarray:
        return (np.bincount(index, weights=values.ravel()) / np.maximum(count, 1))[1:]

    k_f = 2 * np.pi / BOX
    return (
        mean(k) * k_f,
        mean(np.abs(fa) ** 2),
        mean(np.abs(fb) ** 2),
        mean((fa * fb.conj()).real),
    )


def test_scores_match_a_numpy_computation() -> None:
    truth = _sparse_field(3)
    predicted = 0.6 * truth + 0.4 * _sparse_field(4)
    scores = score(predicted, truth, box_mpc_h=BOX, scheme="cic", config=CONFIG)
    k, pp, pt, cross = _numpy_power(predicted, truth)
    keep = (k >= 2 * 2 * np.pi / BOX) & (k <= 0.5 * np.pi * N / BOX)
    np.testing.assert_allclose(scores.k_h_mpc, k[keep], rtol=1e-12)
    expected_pk = np.mean(np.abs(np.log10(pp[keep] / pt[keep])))
    assert scores.pk_distance == pytest.approx(expected_pk, rel=1e-9)
    r = cross[keep] / np.sqrt(pp[keep] * pt[keep])
    assert scores.r_distance == pytest.approx(np.mean(1 - r), rel=1e-9)
    positive = truth[truth > 0]
    edges = np.logspace(
        np.log10(positive.min()), np.log10(max(predicted.max(), truth.max())), CONFIG.pdf_bins + 1
    )
    n_p, n_t = np.histogram(predicted, edges)[0], np.histogram(truth, edges)[0]
    occupied = (n_p > 0) | (n_t > 0)
    expected_pdf = np.mean(np.abs(np.log10((n_p[occupied] + 1) / (n_t[occupied] + 1))))
    assert scores.pdf_distance == pytest.approx(expected_pdf, rel=1e-12)


def test_r_range_and_bad_input() -> None:
    truth = _sparse_field(5)
    predicted = _sparse_field(6)
    capped = score(
        predicted,
        truth,
        box_mpc_h=BOX,
        scheme="cic",
        config=ScoresConfig(n_theta=3, r_k_max_h_mpc=4.0),
    )
    assert capped.r_k_h_mpc.max() <= 4.0 < capped.k_h_mpc.max()
    with pytest.raises(ValueError, match="no k bin of r"):
        score(predicted, truth, box_mpc_h=BOX, scheme="cic", config=ScoresConfig(n_theta=3))
    with pytest.raises(ValueError, match="differ in shape"):
        score(truth[:-1, :-1, :-1], truth, box_mpc_h=BOX, scheme="cic")
    with pytest.raises(ValueError, match="predicted field's mean is 0 Msun"):
        score(0 * truth, truth, box_mpc_h=BOX, scheme="cic")
    with pytest.raises(SettingError, match="triangle"):
        ScoresConfig(triangle=(4.0, 3.0))
