"""pass@k, avg@k and the evaluation report."""

from __future__ import annotations

import json
from math import comb

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlrt.evaluation import SamplingConfig, pass_at_k, summarize, write_results
from rlrt.evaluation.metrics import k_values


def test_pass_at_k_by_hand():
    assert pass_at_k(4, 0, 1) == 0.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 3, 2) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


@given(st.integers(1, 20).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_the_combinatorial_definition(args):
    n, c, k = args
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))
    assert pass_at_k(n, c, 1) == pytest.approx(c / n)


def test_summarize_drops_unscorable_problems():
    summary = summarize([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [None, None, None, None]])
    assert summary["problems"] == 2 and summary["unscorable"] == 1
    assert summary["avg@4"] == pytest.approx((0.25 + 1.0) / 2)
    assert summary["pass@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert k_values(8) == [1, 2, 4, 8] and k_values(6) == [1, 2, 4, 6]


def test_results_files(tmp_path):
    results = [{"model": "m", "dataset": "d", "summary": {"problems": 2, "avg@2": 0.5, "pass@1": 0.5, "pass@2": 0.75}}]
    json_path, md_path = write_results(results, SamplingConfig(max_new_tokens=8), tmp_path)
    payload = json.loads(json_path.read_text())
    assert payload["sampling"]["max_new_tokens"] == 8 and payload["results"][0]["summary"]["pass@2"] == 0.75
    table = md_path.read_text()
    assert "| m | d | 2 | 50.0 | 50.0 | 75.0 |" in table


def test_sampling_config_validation():
    with pytest.raises(ValueError):
        SamplingConfig(top_p=0.0)
