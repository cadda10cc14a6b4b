"""distill.correlation.spearman: the one Spearman of the project (distill compare, the benchmarks' STS and
word-similarity scores, the paired bootstraps), its constant-input rule and its agreement with scipy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers.paths import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from distill.correlation import rankdata, spearman


def test_ranks_average_ties():
    assert list(rankdata([10, 20, 20, 5])) == [2.0, 3.5, 3.5, 1.0]


def test_known_values():
    # ranks 1,2,3,4,5 vs 2,1,4,3,5: sum d^2 = 4 -> rho = 1 - 6*4/(5*24) = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    x = np.random.default_rng(0).normal(size=50)
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)


@pytest.mark.parametrize("a, b",
                         [([1, 1, 1], [1, 2, 3]), ([1, 2, 3], [4, 4, 4]), ([2, 2], [2, 2]), ([1], [5]), ([], [])])
def test_constant_or_too_short_input_is_no_association(a, b):
    """The rule: no ordering to correlate -> 0.0 (never NaN), so a suite average or a bootstrap stays a number."""
    assert spearman(a, b) == 0.0


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match="one length, got 3 and 2"):
        spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        spearman([1.0, float("nan"), 3.0], [1, 2, 3])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 5), st.integers(-5, 5)), min_size=2, max_size=40))
def test_agrees_with_scipy_on_tied_integers(pairs):
    from scipy.stats import spearmanr

    a, b = np.array(pairs, dtype=np.float64).T
    ours = spearman(a, b)
    if np.all(a == a[0]) or np.all(b == b[0]):
        assert ours == 0.0
    else:
        assert ours == pytest.approx(float(spearmanr(a, b).statistic), abs=1e-12)
        assert ours == pytest.approx(spearman(b, a), abs=1e-15)


def test_every_caller_uses_this_one():
    from benchmarks.quality import metrics
    from distill.comparison import measure

    assert measure.spearman is spearman and metrics.spearman is spearman
    gold = np.arange(6, dtype=np.float64)
    constant = np.ones((6, 4), dtype=np.float32)
    assert metrics.sts_spearman(constant, constant, gold) == 0.0  # a model with one vector for every text scores 0


def test_the_benchmarks_metrics_load_no_torch():
    code = "import sys, benchmarks.quality.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip() == "False"

