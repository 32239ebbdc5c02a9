"""Pure helpers: stats, the reference loss, exercise checks, profiles, the command line."""

import math

import numpy as np
import pytest
import torch

from w2s_helpers import checks, losses, profiles, stats
from w2s_helpers.__main__ import main


def test_pairwise_loss_golden():
    # delta 0 -> log 2 whatever the label
    assert losses.pairwise_loss(torch.tensor([0.0]), torch.tensor([0.7])).item() == pytest.approx(math.log(2))
    # hard label 1, delta = log 3 -> sigma = 3/4 -> loss = -log(3/4)
    d = torch.tensor([math.log(3.0)])
    assert losses.pairwise_loss(d, torch.tensor([1.0])).item() == pytest.approx(-math.log(0.75))
    # soft label 0.25 on the same delta: -(0.25 log 3/4 + 0.75 log 1/4)
    want = -(0.25 * math.log(0.75) + 0.75 * math.log(0.25))
    assert losses.pairwise_loss(d, torch.tensor([0.25])).item() == pytest.approx(want)
    # confident and wrong stays finite
    assert math.isfinite(losses.pairwise_loss(torch.tensor([-80.0]), torch.tensor([1.0])).item())


def test_check_passes_reference_and_fails_wrong_answers(capsys):
    checks.compare(losses.pairwise_loss, losses.pairwise_loss, checks.pairwise_cases(), "ref")
    assert "PASS ref" in capsys.readouterr().out
    flipped = lambda d, y: losses.pairwise_loss(-d, y)  # sign error
    with pytest.raises(AssertionError, match="case"):
        checks.compare(flipped, losses.pairwise_loss, checks.pairwise_cases(), "flipped")
    naive = lambda d, y: torch.nn.functional.binary_cross_entropy(torch.sigmoid(d), y)  # overflows to inf/clamps
    with pytest.raises(AssertionError):
        checks.compare(naive, losses.pairwise_loss, checks.pairwise_cases(), "naive")
    summed = lambda d, y: losses.pairwise_loss(d, y) * len(d)  # sum, not mean
    with pytest.raises(AssertionError):
        checks.compare(summed, losses.pairwise_loss, checks.pairwise_cases(), "summed")


def test_wilson_ci():
    lo, hi = stats.wilson_ci(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert stats.wilson_ci(0, 10)[0] == 0.0
    with pytest.raises(ValueError):
        stats.wilson_ci(0, 0)


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    x = (np.arange(200) % 3 == 0).astype(float)
    a, b = stats.bootstrap_mean_ci(x, seed=1), stats.bootstrap_mean_ci(x, seed=1)
    assert a == b and a[1] <= a[0] <= a[2]
    assert stats.bootstrap_mean_ci(np.ones(5)) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        stats.bootstrap_mean_ci(np.array([]))


def test_profiles():
    assert set(profiles.PROFILES) >= {"ci", "laptop", "paper"}
    p = profiles.get("ci")
    with pytest.raises(Exception):
        p.n_train = 5  # frozen
    assert p.replace(n_train=5).n_train == 5 and p.n_train == 200
    with pytest.raises(KeyError, match="choose one of ci, laptop, paper"):
        profiles.get("labtop")
    from w2s_helpers import models

    for prof in profiles.PROFILES.values():
        for rung in prof.ladder:
            models.get_rung(rung)  # every rung a profile names exists


def test_cli_check_and_errors(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "MISMATCH" not in out
    with pytest.raises(SystemExit):
        main(["no-such-command"])


def test_mean_ci():
    r = stats.mean_ci([1.0, 2.0, 3.0])
    # sd = 1, n = 3: half-width = 4.303 / sqrt(3)
    assert r["mean"] == 2.0 and r["high"] - 2.0 == pytest.approx(4.303 / math.sqrt(3))
    assert math.isnan(stats.mean_ci([0.5])["low"]) and stats.mean_ci([0.5, float("nan")])["n"] == 1
    assert stats.t_quantile_975(100) == 1.96
