"""The cusp-core mixture-density CNN, its loss, MC-dropout and galaxy folds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from darkstack.errors import InputError
from darkstack.train.folds import galaxy_folds
from darkstack.train.models.mdcnn import (
    MDCNN,
    MDCNNConfig,
    mc_dropout_density,
    mixture_density,
    mixture_nll,
    mixture_parameters,
)


def test_mixture_nll_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    outputs = torch.tensor(rng.normal(size=(5, 1, 6)), dtype=torch.float64)
    targets = torch.tensor(rng.normal(size=5), dtype=torch.float64)
    weights, means, sigma = (t.numpy()[:, 0] for t in mixture_parameters(outputs))
    expected = -np.log(
        np.sum(weights * stats.norm.pdf(targets.numpy()[:, None], loc=means, scale=sigma), axis=1)
    )
    np.testing.assert_allclose(mixture_nll(outputs, targets)[:, 0].numpy(), expected, rtol=1e-10)


def test_mixture_density_integrates_to_one_and_matches_scipy() -> None:
    outputs = torch.tensor([[0.3, -0.2, -1.0, -0.4, 0.1, -1.5]], dtype=torch.float64)
    grid = torch.linspace(-6.0, 6.0, 4001, dtype=torch.float64)
    density = mixture_density(outputs, grid)[0]
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-6)
    weights, means, sigma = (t.numpy()[0] for t in mixture_parameters(outputs))
    x = grid.numpy()[::500]
    expected = sum(
        w * stats.norm.pdf(x, m, s) for w, m, s in zip(weights, means, sigma, strict=True)
    )
    np.testing.assert_allclose(density.numpy()[::500], expected, rtol=1e-10)


def test_mdcnn_shapes_and_mc_dropout_posterior() -> None:
    torch.manual_seed(0)
    config = MDCNNConfig(image_size=16, conv_channels=(4, 8), dense_units=(16,), dropout=0.5)
    model = MDCNN(config).eval()
    images = torch.rand(3, 2, 16, 16)
    assert model(images).shape == (3, 1, 6)
    grid = torch.linspace(-3.0, 1.0, 401)
    mean, passes = mc_dropout_density(model, images, grid, n_passes=20)
    assert passes.shape == (20, 3, 401) and not model.training
    np.testing.assert_allclose(torch.trapezoid(mean, grid).numpy(), 1.0, rtol=1e-5)
    # Dropout is on during the passes: they differ.
    assert passes.std(dim=0).max() > 0
    # The passes equal whole forward passes with dropout on (the branches are run once).
    torch.manual_seed(7)
    model.train()
    whole = torch.stack([mixture_density(model(images)[:, 0], grid) for _ in range(20)])
    model.eval()
    torch.manual_seed(7)
    _, cached = mc_dropout_density(model, images, grid, n_passes=20)
    torch.testing.assert_close(cached, whole)


@pytest.mark.slow
def test_mdcnn_learns_a_slope_from_a_map() -> None:
    """A map whose bright row encodes the slope is learnt with calibrated widths."""
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    slopes = rng.uniform(-1.5, 0.0, 512)
    images = np.zeros((512, 2, 16, 16), dtype=np.float32)
    rows = np.clip(((slopes + 1.5) / 1.5 * 15).round().astype(int), 0, 15)
    images[np.arange(512), 0, rows, 8] = 1.0
    images[:, 1] = rng.random((512, 16, 16))
    x, y = torch.tensor(images), torch.tensor(slopes, dtype=torch.float32)
    model = MDCNN(MDCNNConfig(image_size=16, conv_channels=(8, 8), dense_units=(32,), dropout=0.0))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        optimiser.zero_grad()
        mixture_nll(model(x), y).mean().backward()
        optimiser.step()
    weights, means, _ = mixture_parameters(model(x)[:, 0])
    mode = means.gather(1, weights.argmax(dim=1, keepdim=True))[:, 0]
    # A row is 0.1 wide in slope: the prediction must be within a row.
    assert torch.median((mode - y).abs()).item() < 0.1


def test_folds_are_disjoint_by_galaxy_and_cover_every_galaxy_once() -> None:
    galaxy = np.repeat(np.arange(23), 7)
    folds = galaxy_folds(galaxy, n_folds=5, seed=3)
    held_out = np.concatenate([galaxy[test] for _, test in folds])
    assert np.array_equal(np.sort(np.unique(held_out)), np.arange(23))
    assert held_out.size == galaxy.size
    for train, test in folds:
        assert not set(galaxy[train]) & set(galaxy[test])
        assert train.size + test.size == galaxy.size
    with pytest.raises(InputError, match="n_folds"):
        galaxy_folds(galaxy, n_folds=24)
