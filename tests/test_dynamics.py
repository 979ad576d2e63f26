"""Growth of a logged quantity over a run (rlrt.analysis.dynamics), checked against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlrt.analysis.dynamics import dynamics_table, growth, run_dynamics


def test_growth_of_a_line_by_hand():
    steps = list(range(1, 121))
    g = growth(steps, [float(s) for s in steps])
    # early = steps 1-20, mean 10.5; late = steps 101-120, mean 110.5; trend over 61-120, perfectly monotone
    assert g["early"] == pytest.approx(10.5) and g["late"] == pytest.approx(110.5)
    assert g["ratio"] == pytest.approx(110.5 / 10.5)
    assert g["rho"] == pytest.approx(1.0) and g["p"] < 1e-10
    assert (g["early_steps"], g["late_steps"], g["trend_steps"]) == ([1, 20], [101, 120], [61, 120])


def test_growth_of_a_short_run_and_of_a_flat_or_falling_one():
    g = growth(range(1, 61), [2.0] * 60)
    assert g["ratio"] == 1.0 and g["rho"] is None and g["p"] is None  # constant: no trend to rank
    assert (g["early_steps"], g["late_steps"], g["trend_steps"]) == ([1, 10], [51, 60], [31, 60])
    falling = growth([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
    # window 1 step: early 6, late 1; trend over steps 4-6: values 3, 2, 1
    assert (falling["early"], falling["late"], falling["ratio"]) == (6.0, 1.0, 1 / 6)
    assert falling["rho"] == pytest.approx(-1.0)


def test_growth_drops_non_finite_values_and_refuses_mismatched_lengths():
    assert growth([1, 2], [math.nan, math.inf]) is None
    g = growth([1, 2, 3, 4, 5, 6], [0.0, math.nan, 1, 1, 1, 3])
    assert g["early"] == 0.0 and g["ratio"] is None and g["late"] == 3.0
    with pytest.raises(ValueError, match="differ in shape"):
        growth([1, 2], [1.0])
    assert growth([1, 60], [1.0, 2.0]) is not None and growth([30, 60], [1.0, 2.0]) is None  # no step in 1-10


@given(st.lists(st.integers(1, 1000), min_size=6, max_size=60), st.integers(1, 50))
def test_growth_ratio_is_scale_free(values, scale):
    steps = range(1, len(values) + 1)
    a, b = growth(steps, [float(v) for v in values]), growth(steps, [float(v * scale) for v in values])
    assert b["ratio"] == pytest.approx(a["ratio"], rel=1e-9)
    assert (a["rho"] is None) == (b["rho"] is None)


def test_run_dynamics_reads_training_records_and_marks_missing_keys():
    records = [{"step": s, "loss": 0.1, "completions/mean_length": 10.0 * s, "completions/clipped_ratio": 0.0}
               for s in range(1, 7)]
    records += [{"step": 6, "eval_avg@4": 0.2}, {"train_runtime": 10.0}]  # not training steps
    records.insert(3, {"step": 6, "loss": 0.1, "completions/mean_length": 1000.0})  # step 6 before a resume
    dyn = run_dynamics(records)
    assert dyn["entropy"] is None  # never logged (SDPO)
    assert dyn["completions/mean_length"]["early"] == 10.0 and dyn["completions/mean_length"]["late"] == 60.0
    table = "\n".join(dynamics_table({"sdpo-s0": dyn}))
    assert "| sdpo-s0 | 10 → 60 (×6.00); rho +1.00" in table and table.count("—") >= 1
