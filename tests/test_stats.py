"""inferflow_core.stats against brute-force definitions (values checked once against scipy 1.17)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from inferflow_core.stats import average_ranks, kendall_tau_b, spearman, top_k_overlap


def test_average_ranks_share_ties() -> None:
    assert average_ranks(np.array([10.0, 20.0, 10.0, 30.0])).tolist() == [1.5, 3.0, 1.5, 4.0]


def test_spearman_and_kendall_with_ties_match_scipy_values() -> None:
    a = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    b = np.array([2.0, 1.0, 3.0, 3.0, 5.0, 4.0])
    # scipy.stats.spearmanr(a, b) = 0.8088235294117647, scipy.stats.kendalltau(a, b) = 0.6428571428571429
    assert spearman(a, b) == pytest.approx(0.8088235294117647, abs=1e-12)
    assert kendall_tau_b(a, b) == pytest.approx(0.6428571428571429, abs=1e-12)


def test_against_brute_force_without_ties() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=40), rng.normal(size=40)
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    assert spearman(a, b) == pytest.approx(1 - 6 * ((ra - rb) ** 2).sum() / (40 * (40**2 - 1)))
    pairs = list(itertools.combinations(range(40), 2))
    tau = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i, j in pairs) / len(pairs)
    assert kendall_tau_b(a, b) == pytest.approx(tau)
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)


def test_undefined_cases_and_top_k() -> None:
    assert np.isnan(spearman(np.array([1.0]), np.array([2.0])))
    assert np.isnan(kendall_tau_b(np.ones(5), np.arange(5.0)))
    a = np.array([0.9, 0.8, 0.1, 0.2])
    assert top_k_overlap(a, np.array([0.1, 0.8, 0.9, 0.2]), 2) == 0.5
    assert top_k_overlap(a, a, 10) == 1.0
