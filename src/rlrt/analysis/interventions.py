"""Does ``KL(P_S || P_T)`` mark the positions where a rollout's outcome is decided? Pure parts of the intervention
analysis behind ``rlrt interventions`` (the model-facing loop is in ``intervention_run.py``).

The test (after the paper's intervention experiment, Kim et al. arXiv 2605.10781): in a rollout ``y`` with a
teacher context, take the position of largest ``KL(P_S || P_T)`` and ``R`` random positions drawn under the same
eligibility rule; from each position ``t`` resample ``M`` continuations of the prefix ``y_<t``, (a) as is and
(b) with a short reflection phrase appended to the prefix; grade each. A position's **influence** is the fraction
of its continuations whose correctness differs from the original rollout's. If the premise holds, the top-KL
position's influence (its *flip rate*) is larger than a random position's; the paper reports about twice.

Definitions used throughout (tested in ``tests/test_interventions.py``):

* **position** ``t`` (0-based, over completion tokens): the place *before* completion token ``t``; its KL is
  ``KL(P_S(. | x, y_<t) || P_T(. | c, x, y_<t))``, the disagreement about token ``t``; an intervention there keeps
  ``y_<t`` and regenerates from ``t`` on.
* **eligible**: ``t <= T - 2`` (never the last token) and the decoded prefix ``y_<t`` does not reach into the
  final answer, i.e. ``len(decode(y_<t)) <= final_answer_start(decode(y))``.
* **random positions**: ``R`` distinct eligible positions other than the top-KL one, uniformly without
  replacement (all of them when fewer remain); a rollout with fewer than two eligible positions is not probed.

Statistics: percentile bootstrap intervals over rollouts (``scipy.stats.bootstrap``; the top/random pair of a
rollout is resampled together) and Spearman's rank correlation (``scipy.stats.spearmanr``).
"""

from __future__ import annotations

import random
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

ARMS = ("resample", "reflect")
GROUPS = ("all", "correct", "incorrect")

# Where the final answer statement starts: the last \boxed{ / \fbox{ (what the math reward reads), else the last
# "answer is" phrase (its fallback).
_BOX_START = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_IS_START = re.compile(r"answer\s*(?:is|:)", re.IGNORECASE)


# ------------------------------------------------------------------------------------------ positions


def final_answer_start(text: str) -> int:
    """Character offset where the final answer statement of ``text`` begins.

    The start of the last ``\\boxed{``/``\\fbox{``; without one, the start of the last "answer is"/"answer:"; without
    either, ``len(text)`` (no final answer: nothing is excluded).
    """
    for pattern in (_BOX_START, _ANSWER_IS_START):
        matches = list(pattern.finditer(text))
        if matches:
            return matches[-1].start()
    return len(text)


def eligible_positions(prefix_chars: Sequence[int], answer_start: int) -> list[int]:
    """Positions where an intervention may go.

    Args:
        prefix_chars: ``(T,)`` ``len(decode(y_<t))`` for ``t = 0 .. T-1`` (so ``prefix_chars[0] == 0``).
        answer_start: ``final_answer_start(decode(y))``.

    Returns:
        ``t`` in ``0 .. T-2`` with ``prefix_chars[t] <= answer_start``, ascending.
    """
    return [t for t in range(len(prefix_chars) - 1) if prefix_chars[t] <= answer_start]


def choose_positions(kl: Sequence[float], eligible: Sequence[int], num_random: int,
                     rng: random.Random) -> tuple[int, list[int]] | None:
    """The top-KL eligible position and ``num_random`` random eligible others.

    Args:
        kl: ``(T,)`` per-position ``KL(P_S || P_T)``, nats.
        eligible: positions allowed (``eligible_positions``).
        num_random: ``R``.
        rng: the rollout's own generator (seeded by the caller, so the choice is reproducible).

    Returns:
        ``(top, randoms)``, ``randoms`` sorted; ``None`` when fewer than two positions are eligible (no random
        position left to compare with). Ties in KL go to the earliest position.
    """
    if len(eligible) < 2:
        return None
    top = max(eligible, key=lambda t: (float(kl[t]), -t))
    others = [t for t in eligible if t != top]
    return top, sorted(rng.sample(others, min(num_random, len(others))))


def rollout_rng(seed: int, problem: int, rollout: int) -> random.Random:
    """One generator per rollout: its positions do not depend on which other rollouts are probed."""
    return random.Random((seed * 1_000_003 + problem) * 1_000_003 + rollout)


def flip_fraction(original_correct: bool, continuation_correct: Sequence[bool]) -> float:
    """Influence of one position: the fraction of ``continuation_correct`` that differs from ``original_correct``."""
    if not continuation_correct:
        raise ValueError("No continuations to count flips over; continuations must be >= 1.")
    return sum(bool(c) != bool(original_correct) for c in continuation_correct) / len(continuation_correct)


# ---------------------------------------------------------------------------------------- statistics


def _resample_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def bootstrap_mean(values: Sequence[float], confidence: float = 0.95, n_resamples: int = 9999,
                   seed: int = 0) -> dict[str, Any]:
    """Mean of ``values`` with its percentile bootstrap interval (``scipy.stats.bootstrap``).

    Returns ``{"mean", "low", "high", "n"}``; ``low``/``high`` are ``None`` for fewer than two values.
    """
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype=float)
    out: dict[str, Any] = {"mean": float(x.mean()) if x.size else None, "low": None, "high": None, "n": int(x.size)}
    if x.size >= 2 and np.ptp(x) == 0:
        out["low"] = out["high"] = out["mean"]  # every resample has the same mean
    elif x.size >= 2:
        ci = bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                       random_state=_resample_rng(seed)).confidence_interval
        out["low"], out["high"] = float(ci.low), float(ci.high)
    return out


def _ratio(top, rand, axis=-1):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mean(top, axis=axis) / np.mean(rand, axis=axis)


def _difference(top, rand, axis=-1):
    return np.mean(top, axis=axis) - np.mean(rand, axis=axis)


def bootstrap_paired(top: Sequence[float], rand: Sequence[float], statistic: str, confidence: float = 0.95,
                     n_resamples: int = 9999, seed: int = 0) -> dict[str, Any]:
    """``mean(top) / mean(rand)`` (``statistic="ratio"``) or ``mean(top) - mean(rand)`` (``"difference"``), with
    a percentile bootstrap interval that resamples rollouts (a rollout's two values move together).

    A ratio whose denominator is 0 is ``inf`` (``nan`` for 0/0): an interval reaching ``inf`` means the random
    flip rate was 0 in some resamples; ``None`` where the statistic itself is undefined (0/0).
    """
    from scipy.stats import DegenerateDataWarning, bootstrap

    fn = {"ratio": _ratio, "difference": _difference}[statistic]
    t, r = np.asarray(top, dtype=float), np.asarray(rand, dtype=float)
    value = float(fn(t, r)) if t.size else float("nan")
    out: dict[str, Any] = {"value": None if np.isnan(value) else value, "low": None, "high": None, "n": int(t.size)}
    if t.size >= 2 and np.ptp(t) == 0 and np.ptp(r) == 0:
        out["low"] = out["high"] = out["value"]  # every resample gives the same value
    elif t.size >= 2:
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateDataWarning)  # nan resamples (0/0): reported as None below
            ci = bootstrap((t, r), fn, paired=True, vectorized=True, confidence_level=confidence,
                           n_resamples=n_resamples, method="percentile",
                           random_state=_resample_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
        out["low"], out["high"] = (None if np.isnan(low) else low), (None if np.isnan(high) else high)
    return out


def spearman(kl: Sequence[float], influence: Sequence[float]) -> dict[str, Any]:
    """Spearman's rank correlation (``scipy.stats.spearmanr``) of KL and influence over positions.

    Returns ``{"rho", "p_value", "n"}``; ``rho`` is ``None`` with fewer than three positions or a constant side.
    """
    from scipy.stats import spearmanr

    x, y = np.asarray(kl, dtype=float), np.asarray(influence, dtype=float)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": None, "p_value": None, "n": int(x.size)}
    result = spearmanr(x, y)
    return {"rho": float(result.statistic), "p_value": float(result.pvalue), "n": int(x.size)}


def summarize(rollouts: Sequence[dict[str, Any]], confidence: float = 0.95, n_resamples: int = 9999,
              seed: int = 0) -> dict[str, Any]:
    """The analysis' numbers from probed rollouts.

    Args:
        rollouts: each with ``correct`` (bool), ``top`` and ``random`` (positions), ``full`` (every eligible
            position probed) and ``probes``: ``{position: {"kl": float, "resample": influence, "reflect":
            influence}}`` (positions as ``int`` or ``str``).

    Returns:
        ``{"flip_rates": {group: {arm: {"top", "random", "ratio", "difference"}}}, "spearman": {arm: {...}}}``
        with groups ``all``/``correct``/``incorrect`` (of the original rollout); ``top``/``random`` are
        ``bootstrap_mean`` results over rollouts (a rollout's random value is the mean over its random positions).
    """
    flip_rates: dict[str, Any] = {}
    for group in GROUPS:
        chosen = [r for r in rollouts if group == "all" or r["correct"] == (group == "correct")]
        flip_rates[group] = {}
        for arm in ARMS:
            top = [_probe(r, r["top"])[arm] for r in chosen]
            rand = [float(np.mean([_probe(r, t)[arm] for t in r["random"]])) for r in chosen]
            kw = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
            flip_rates[group][arm] = {
                "top": bootstrap_mean(top, **kw), "random": bootstrap_mean(rand, **kw),
                "ratio": bootstrap_paired(top, rand, "ratio", **kw),
                "difference": bootstrap_paired(top, rand, "difference", **kw),
            }
    full = [r for r in rollouts if r.get("full")]
    correlation = {}
    for arm in ARMS:
        points = [(p["kl"], p[arm]) for r in full for p in r["probes"].values()]
        correlation[arm] = {**spearman([k for k, _ in points], [i for _, i in points]), "rollouts": len(full)}
    return {"flip_rates": flip_rates, "spearman": correlation, "confidence": confidence,
            "n_resamples": n_resamples}


def _probe(rollout: dict[str, Any], position: int) -> dict[str, Any]:
    probes = rollout["probes"]
    return probes[position] if position in probes else probes[str(position)]


# ---------------------------------------------------------------------------------------------- output


def _interval(value, low, high, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    """``value [low, high]`` scaled; ``inf`` where unbounded, ``n/a`` where undefined."""
    def fmt(x):
        if x is None:
            return "n/a"
        return "inf" if np.isinf(x) else f"{scale * x:.{digits}f}"

    if value is None:
        return "n/a"
    if low is None and high is None:
        return f"{fmt(value)}{unit} [n/a]"
    return f"{fmt(value)}{unit} [{fmt(low)}, {fmt(high)}]"


def markdown_table(summary: dict[str, Any]) -> str:
    """The flip-rate table and the rank correlations, as Markdown."""
    level = round(100 * summary.get("confidence", 0.95))
    lines = [
        "| rollouts | intervention | n | flip rate at top-KL | flip rate at random | ratio top/random | "
        "difference (points) |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, arms in summary["flip_rates"].items():
        for arm, e in arms.items():
            top, rand, ratio, diff = e["top"], e["random"], e["ratio"], e["difference"]
            lines.append(
                f"| {group} | {arm} | {top['n']} | {_interval(top['mean'], top['low'], top['high'], 100, 1, ' %')} | "
                f"{_interval(rand['mean'], rand['low'], rand['high'], 100, 1, ' %')} | "
                f"{_interval(ratio['value'], ratio['low'], ratio['high'], 1, 2)} | "
                f"{_interval(diff['value'], diff['low'], diff['high'], 100, 1)} |"
            )
    lines += ["", f"Brackets: {level} % percentile bootstrap interval over rollouts "
              f"({summary.get('n_resamples')} resamples).", "",
              "| intervention | Spearman rho(KL, influence) | p | positions | rollouts |", "|---|---|---|---|---|"]
    for arm, entry in summary["spearman"].items():
        rho = "n/a" if entry["rho"] is None else f"{entry['rho']:.3f}"
        p = "n/a" if entry["p_value"] is None else f"{entry['p_value']:.3g}"
        lines.append(f"| {arm} | {rho} | {p} | {entry['n']} | {entry['rollouts']} |")
    return "\n".join(lines) + "\n"


def plot_influence(rollouts: Sequence[dict[str, Any]], path) -> None:
    """One figure, a panel per intervention: each probed position's influence against its KL, top-KL positions,
    random positions and the other positions of fully probed rollouts marked apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ARMS), figsize=(10, 4), sharey=True)
    for ax, arm in zip(axes, ARMS):
        for kind, style in (("other", dict(color="0.7", marker=".", s=18)),
                            ("random", dict(color="tab:blue", marker="o", s=22)),
                            ("top", dict(color="tab:red", marker="*", s=70))):
            xs, ys = [], []
            for r in rollouts:
                for position, probe in r["probes"].items():
                    t = int(position)
                    role = "top" if t == r["top"] else ("random" if t in r["random"] else "other")
                    if role == kind:
                        xs.append(probe["kl"])
                        ys.append(probe[arm])
            if xs:
                ax.scatter(xs, ys, label={"top": "top-KL", "random": "random", "other": "other (full probe)"}[kind],
                           alpha=0.75, **style)
        ax.set_title(f"{arm}: " + ("prefix as is" if arm == "resample" else "reflection inserted"))
        ax.set_xlabel("KL(P_S || P_T) at the position (nats)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("influence (fraction of continuations flipped)")
    axes[-1].legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
