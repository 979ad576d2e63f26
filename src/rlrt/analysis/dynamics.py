"""Does a logged quantity grow over a run? Early and late window means, their ratio, and the trend.

Used by ``rlrt compare`` for every finished run (response length, the fraction of completions cut at
``max_completion_length``, entropy): the collapse the paper reports for ``rlrt_all`` shows as length and entropy that
keep rising. Pure functions of the ``metrics.jsonl`` records; the rank correlation is ``scipy.stats.spearmanr``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

DYNAMICS_KEYS = ("completions/mean_length", "completions/clipped_ratio", "entropy")


def growth(steps: Sequence[int], values: Sequence[float], window: float = 1 / 6) -> dict[str, Any] | None:
    """Early and late means of ``values`` and the trend over the run's second half.

    Args:
        steps: optimizer steps ``(N,)``, increasing, ``1..max_steps`` (gaps allowed).
        values: the quantity at each step ``(N,)``; non-finite entries are dropped.
        window: the early and late windows as a fraction of the last step (1/6: steps 1-20 and 101-120 of 120).

    Returns:
        ``{"early", "late", "ratio" (late / early, None if early is 0), "rho", "p" (Spearman correlation of the
        value with the step over the second half, steps > last/2; None when the values there are constant),
        "early_steps", "late_steps", "trend_steps" ([first, last])}``; ``None`` without finite values or when
        a window holds no logged step.
    """
    steps_a, values_a = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    if steps_a.shape != values_a.shape:
        raise ValueError(f"steps {steps_a.shape} and values {values_a.shape} differ in shape")
    keep = np.isfinite(values_a)
    steps_a, values_a = steps_a[keep], values_a[keep]
    if not len(steps_a):
        return None
    last = steps_a.max()
    span = max(1, round(last * window))
    early, late = steps_a <= span, steps_a > last - span
    trend = steps_a > last / 2
    if not early.any() or not late.any():  # sparse logging: a window without a logged step
        return None
    early_mean, late_mean = float(values_a[early].mean()), float(values_a[late].mean())
    rho = p = None
    if trend.sum() >= 3 and np.ptp(values_a[trend]) > 0:
        result = stats.spearmanr(steps_a[trend], values_a[trend])
        rho, p = float(result.statistic), float(result.pvalue)
    return {"early": early_mean, "late": late_mean,
            "ratio": late_mean / early_mean if early_mean else None, "rho": rho, "p": p,
            "early_steps": [1, int(span)], "late_steps": [int(last - span + 1), int(last)],
            "trend_steps": [int(math.floor(last / 2)) + 1, int(last)]}


def run_dynamics(records: Sequence[dict[str, Any]], keys: Sequence[str] = DYNAMICS_KEYS,
                 window: float = 1 / 6) -> dict[str, dict[str, Any] | None]:
    """``growth`` of each of ``keys`` over a run's training records (``metrics.jsonl``: one dict per logged step
    with ``"step"``); a key the run never logged (SDPO has no ``entropy``) maps to ``None``."""
    by_step = {r["step"]: r for r in records if "step" in r and "loss" in r}  # a step logged again after a
    train = [by_step[step] for step in sorted(by_step)]                      # resume: its last record counts
    out = {}
    for key in keys:
        rows = [(r["step"], r[key]) for r in train if isinstance(r.get(key), (int, float))]
        out[key] = growth(*zip(*rows), window=window) if rows else None
    return out


def dynamics_table(dynamics: dict[str, dict[str, dict[str, Any] | None]]) -> list[str]:
    """Markdown lines: per run and quantity, early -> late mean, their ratio, and Spearman's rho (p) over the
    second half."""
    if not dynamics:
        return []
    lines = ["## Training dynamics: growth over each run", "",
             "Mean over the first and last sixth of the steps, their ratio, and Spearman's rho of the value with the "
             "step over the second half (p in brackets; `scipy.stats.spearmanr`).", "",
             "| run | " + " | ".join(DYNAMICS_KEYS) + " |", "|---|" + "---|" * len(DYNAMICS_KEYS)]
    for run, per_key in dynamics.items():
        cells = []
        for key in DYNAMICS_KEYS:
            g = per_key.get(key)
            if g is None:
                cells.append("—")
                continue
            ratio = "—" if g["ratio"] is None else f"×{g['ratio']:.2f}"
            trend = "—" if g["rho"] is None else f"rho {g['rho']:+.2f} (p {g['p']:.2g})"
            cells.append(f"{g['early']:.3g} → {g['late']:.3g} ({ratio}); {trend}")
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return lines + [""]
