"""``tools/bootstrap_independence.py``: interval scores with known answers, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
from repo_scripts import load_script

from darkstack.errors import InputError
from darkstack.train.config import TrainConfig
from darkstack.train.run import member_weights


def test_members_exchangeable_with_the_truth_cover_68_percent() -> None:
    tool = load_script("tools/bootstrap_independence.py")
    rng = np.random.default_rng(3)
    centre = rng.normal(size=(4000, 1, 2))
    # 400 members and the truth drawn from the same N(centre, 0.3): the members' 16-84%
    # interval holds the truth 68% of the time and their spread is 0.3.
    members = centre + 0.3 * rng.normal(size=(4000, 400, 2))
    true = centre[:, 0] + 0.3 * rng.normal(size=(4000, 2))
    draws = tool.Draws(
        run="r", samples=np.arange(4000), true=true, values=members, heteroscedastic=False
    )
    scores = tool.interval_scores(draws)
    np.testing.assert_allclose(scores["coverage68"], 0.68, atol=0.025)  # 3.4 binomial sigma
    np.testing.assert_allclose(scores["member_spread_dex"], 0.3, rtol=0.02)
    np.testing.assert_allclose(scores["width68_dex"], 2 * 0.3 * 0.9945, rtol=0.03)


def test_identical_members_with_a_variance_have_no_spread_and_the_gaussian_width() -> None:
    tool = load_script("tools/bootstrap_independence.py")
    rng = np.random.default_rng(4)
    sigma = 0.2
    values = np.zeros((3000, 5, 2, 1))
    values[:, :, 1] = np.log(sigma**2)
    true = sigma * rng.normal(size=(3000, 1))
    draws = tool.Draws(
        run="r", samples=np.arange(3000), true=true, values=values, heteroscedastic=True
    )
    scores = tool.interval_scores(draws)
    assert scores["member_spread_dex"] == [0.0]
    np.testing.assert_allclose(scores["width68_dex"], 2 * 0.9945 * sigma, rtol=1e-3)
    np.testing.assert_allclose(scores["coverage68"], 0.68, atol=0.03)


def test_runs_of_other_samples_or_heads_are_refused_in_one_line() -> None:
    tool = load_script("tools/bootstrap_independence.py")

    def draws(run: str, samples: list[int], heteroscedastic: bool = False):
        n = len(samples)
        shape = (n, 1, 2, 3) if heteroscedastic else (n, 1, 3)
        return tool.Draws(
            run=run,
            samples=np.array(samples),
            true=np.zeros((n, 3)),
            values=np.zeros(shape),
            heteroscedastic=heteroscedastic,
        )

    both = tool.joined([draws("a", [1, 2]), draws("b", [1, 2])])
    assert both.values.shape == (2, 2, 3) and both.run == "a+b"
    with pytest.raises(InputError, match="run b predicts other samples than run a"):
        tool.joined([draws("a", [1, 2]), draws("b", [1, 3])])
    with pytest.raises(InputError, match="run b has another head than run a"):
        tool.joined([draws("a", [1, 2]), draws("b", [1, 2], heteroscedastic=True)])


def test_a_lone_network_trains_on_a_resample_of_its_own_only_with_bootstrap_single() -> None:
    groups = np.repeat(np.arange(40), 3)
    alone = member_weights(TrainConfig(task="profiles"), groups)
    assert alone.shape == (120, 1) and np.all(alone == 1)
    separate = [
        member_weights(TrainConfig(task="profiles", bootstrap_single=True, seed=seed), groups)
        for seed in (0, 1)
    ]
    for weights in separate:
        # 40 galaxies drawn with replacement, each with all three of its views.
        assert weights.sum() == 120 and (weights == 0).any()
        assert np.all(weights.reshape(40, 3).std(axis=1) == 0)
    assert not np.array_equal(*separate)
    # Seed s's resample is member 0 of the joint bootstrap of seed s.
    joint = member_weights(TrainConfig(task="profiles", n_members=3, seed=1), groups)
    np.testing.assert_array_equal(separate[1][:, 0], joint[:, 0])
