"""Predictive distributions of the profiles task: the mixture, β-NLL and the calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from darkstack.config import ConfigError, load_config
from darkstack.train.calibration import Calibration, fit_calibration
from darkstack.train.losses import beta_nll
from darkstack.train.predict import mixture_moments, summarise
from darkstack.train.tasks.profiles import PRESETS, ProfilesTrainConfig


def test_mixture_variance_matches_monte_carlo_draws_of_the_mixture() -> None:
    """Mean of the members' variances + variance of their means, against draws of the mixture."""
    rng = np.random.default_rng(1)
    n_members, n_radii = 5, 3
    means = rng.normal(10.0, 0.3, size=(n_members, n_radii))
    sigmas = rng.uniform(0.05, 0.4, size=(n_members, n_radii))
    draws = np.stack([means, 2.0 * np.log(sigmas)], axis=1)[None]  # (1, k, 2, R)
    mean, sigma = mixture_moments(draws, heteroscedastic=True)

    n_draws = 400_000
    member = rng.integers(n_members, size=n_draws)
    sample = rng.normal(means[member], sigmas[member])  # (n_draws, R): the mixture itself
    variance = sample.var(axis=0)
    # Standard error of a sample variance: sqrt((m4 - var^2) / n).
    centred = sample - sample.mean(axis=0)
    error = np.sqrt(((centred**4).mean(axis=0) - variance**2) / n_draws)
    assert np.all(np.abs(sigma[0] ** 2 - variance) <= 5 * error)
    assert np.all(np.abs(mean[0] - sample.mean(axis=0)) <= 5 * np.sqrt(variance / n_draws))
    # Without variances the mixture is the members' spread alone.
    _, point_sigma = mixture_moments(means[None], heteroscedastic=False)
    np.testing.assert_allclose(point_sigma[0] ** 2, means.var(axis=0))


def _heteroscedastic_problem(
    rng: np.random.Generator, n: int, miscalibration: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True y = mu(x) + sigma(x) eps per radius; the model knows mu and sigma up to a factor."""
    x = rng.uniform(0.0, 1.0, size=(n, 1))
    mu = 10.0 + 2.0 * x * np.arange(1, miscalibration.size + 1)
    sigma_true = 0.05 + 0.3 * x * np.ones(miscalibration.size)
    y = mu + sigma_true * rng.standard_normal(mu.shape)
    return mu, sigma_true * miscalibration, y


@pytest.mark.parametrize("method", ["variance_scaling", "conformal"])
def test_calibration_fitted_on_validation_restores_coverage_on_test(method: str) -> None:
    rng = np.random.default_rng(7)
    factor = np.array([0.4, 1.0, 2.5])  # too narrow, right, too wide
    n = 4000
    val_mu, val_sigma, val_y = _heteroscedastic_problem(rng, n, factor)
    test_mu, test_sigma, test_y = _heteroscedastic_problem(rng, n, factor)
    # A model's draws: one heteroscedastic member with the (mis-scaled) sigma.
    test_draws = np.stack([test_mu, 2.0 * np.log(test_sigma)], axis=1)[:, None]

    before = summarise(test_draws, heteroscedastic=True)
    covered68 = ((test_y >= before.p16) & (test_y <= before.p84)).mean(axis=0)
    # The true coverage of mu +- z sigma_model, sigma_model = factor sigma: 2 Phi(z factor) - 1.
    expected = 2.0 * stats.norm.cdf(stats.norm.ppf(0.84) * factor) - 1.0
    assert np.all(np.abs(covered68 - expected) <= 3.0 * np.sqrt(expected * (1 - expected) / n))

    calibration = fit_calibration(mean=val_mu, sigma=val_sigma, true=val_y, method=method)
    np.testing.assert_allclose(calibration.scale68, factor**-1, rtol=0.06)
    after = summarise(test_draws, heteroscedastic=True, calibration=calibration)
    for level, low, high in ((0.68, after.p16, after.p84), (0.95, after.p2_5, after.p97_5)):
        covered = ((test_y >= low) & (test_y <= high)).mean(axis=0)
        # Validation and test each add binomial noise to the calibrated coverage.
        tolerance = 3.0 * np.sqrt(level * (1 - level) * 2 / n)
        np.testing.assert_allclose(covered, level, atol=tolerance)
    np.testing.assert_allclose(after.std, test_sigma * calibration.scale68)


def test_calibration_round_trips_through_its_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    mu, sigma, y = _heteroscedastic_problem(rng, 50, np.array([0.5, 2.0]))
    fitted = fit_calibration(mean=mu, sigma=sigma, true=y, method="conformal")
    fitted.save(tmp_path / "calibration.json")
    loaded = Calibration.load(tmp_path / "calibration.json")
    np.testing.assert_array_equal(loaded.scale95, fitted.scale95)
    assert loaded.method == "conformal" and loaded.n_samples == 50
    with pytest.raises(ValueError, match="standard deviation is 0"):
        fit_calibration(mean=mu, sigma=0 * sigma, true=y, method="variance_scaling")


def test_beta_nll_gradient_is_that_of_its_definition() -> None:
    """β-NLL = stopgrad(σ^2β) (log σ² + r²/σ²) / 2: gradients against the hand derivative."""
    generator = torch.Generator().manual_seed(0)
    batch, members, radii, beta = 4, 3, 5, 0.5
    mean = torch.randn(batch, members, radii, generator=generator, dtype=torch.float64)
    log_var = torch.randn(batch, members, radii, generator=generator, dtype=torch.float64)
    targets = torch.randn(batch, radii, generator=generator, dtype=torch.float64)
    outputs = torch.stack([mean, log_var], dim=2).requires_grad_(True)
    beta_nll(outputs, targets, beta=beta).sum().backward()
    assert outputs.grad is not None

    residual = mean - targets[:, None]
    weight = torch.exp(beta * log_var)
    d_mean = weight * residual * torch.exp(-log_var) / radii
    d_log_var = weight * 0.5 * (1.0 - residual**2 * torch.exp(-log_var)) / radii
    torch.testing.assert_close(outputs.grad[:, :, 0], d_mean)
    torch.testing.assert_close(outputs.grad[:, :, 1], d_log_var)


def test_beta_zero_is_the_gaussian_nll_of_torch() -> None:
    generator = torch.Generator().manual_seed(1)
    mean = torch.randn(6, 2, 4, generator=generator)
    log_var = torch.randn(6, 2, 4, generator=generator)
    targets = torch.randn(6, 4, generator=generator)
    ours = beta_nll(torch.stack([mean, log_var], dim=2), targets, beta=0.0)
    reference = torch.nn.GaussianNLLLoss(reduction="none")(
        mean, targets[:, None].expand_as(mean), log_var.exp()
    )
    torch.testing.assert_close(ours, reference.mean(dim=-1))


def test_paper_preset_keeps_the_papers_recipe_and_the_default_is_calibrated() -> None:
    paper = load_config(ProfilesTrainConfig, preset=PRESETS["paper"])
    assert (paper.head, paper.calibration, paper.n_members, paper.bootstrap) == (
        "mse",
        "none",
        100,
        True,
    )
    default = ProfilesTrainConfig()
    assert (default.head, default.calibration) == ("beta_nll", "variance_scaling")
    with pytest.raises(ConfigError, match="calibration"):
        ProfilesTrainConfig(head="mse", n_members=1)
