"""The numbers of ``rlrt compare``, from the small per-run records alone (no model, no checkpoint).

Inputs: for each finished run (arm, seed) its held-out records (``heldout.jsonl``: per evaluation step the
correct-sample count of every held-out problem out of ``samples``), and optionally the starting model's evaluation
(``StartEvaluation``), whose first ``strata_samples`` samples per problem decide the difficulty strata and whose
other samples give the starting model's own avg@k and pass@k curve (separate samples, so the start is not biased by
the selection of its strata). Everything here is a pure function of these records; ``compare.py`` runs the training.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.metrics import pass_at_k
from ..evaluation.strata import DEFAULT_STRATA_EDGES, assign_strata, pass_curve, stratum_labels
from .bootstrap import BootstrapConfig, difference_of_differences, paired_difference

METRICS = ("avg_after_start", "avg_final")  # plus f"pass@{K}_final", K = the final evaluation's samples
DEFAULT_BOOTSTRAP = BootstrapConfig()  # frozen, so one shared default instance is safe


@dataclass
class Evaluation:
    """One held-out evaluation of one model: correct samples per problem (``None``: unscorable) out of ``samples``."""

    step: int
    samples: int
    correct: list[int | None]


@dataclass
class StartEvaluation:
    """The starting model's samples: ``correct[i]`` lists problem ``i``'s samples as 1/0 (``None`` if unscorable).
    The first ``strata_samples`` decide the strata; the rest are the start's own evaluation."""

    correct: list[list[int] | None]
    strata_samples: int
    seed: int | None = None
    answers: list[str] = field(default_factory=list)

    def strata_counts(self) -> list[int | None]:
        return [None if c is None else int(sum(c[: self.strata_samples])) for c in self.correct]

    def evaluation(self) -> Evaluation | None:
        """The samples after the strata ones, as a step-0 evaluation (``None`` when there are none)."""
        rest = [None if c is None else c[self.strata_samples :] for c in self.correct]
        samples = min((len(r) for r in rest if r is not None), default=0)
        if samples == 0:
            return None
        return Evaluation(0, samples, [None if r is None else int(sum(r[:samples])) for r in rest])


def evaluations_from_records(records: Sequence[dict[str, Any]], where: str = "run") -> list[Evaluation]:
    """``heldout.jsonl`` records -> ``Evaluation`` list by step; raises ``ValueError`` when a record has no
    per-problem counts (a run written before they were recorded)."""
    out = []
    for r in records:
        if "correct" not in r:
            raise ValueError(f"{where}: held-out record at step {r.get('step')} has no per-problem counts "
                             "('correct'); train the run again with this version of rlrt.")
        out.append(Evaluation(int(r["step"]), int(r["samples"]), list(r["correct"])))
    return sorted(out, key=lambda e: e.step)


def scorable_problems(evaluations: Sequence[Evaluation], start: StartEvaluation | None) -> np.ndarray:
    """Indices of the problems scorable in every evaluation (and in the start); raises ``ValueError`` when the
    evaluations do not cover the same number of problems."""
    sizes = {len(e.correct) for e in evaluations} | ({len(start.correct)} if start else set())
    if len(sizes) > 1:
        raise ValueError(f"held-out evaluations cover different numbers of problems ({sorted(sizes)}): every run, "
                         "and the starting model's evaluation (start/results.json; delete it to redo it), must use "
                         "the same eval_dataset, eval_limit and eval_dataset_seed.")
    n = sizes.pop() if sizes else 0
    keep = [i for i in range(n) if all(e.correct[i] is not None for e in evaluations)
            and (start is None or start.correct[i] is not None)]
    return np.asarray(keep, dtype=np.intp)


def accuracy(evaluation: Evaluation, problems: np.ndarray) -> np.ndarray:
    """Per-problem accuracy ``correct / samples`` on ``problems``, shape ``(len(problems),)``."""
    return np.asarray([evaluation.correct[i] / evaluation.samples for i in problems], dtype=float)


def pass_per_problem(evaluation: Evaluation, problems: np.ndarray, k: int) -> np.ndarray:
    """Per-problem unbiased pass@k on ``problems``, shape ``(len(problems),)``."""
    return np.asarray([pass_at_k(evaluation.samples, evaluation.correct[i], k) for i in problems], dtype=float)


def after_start(evaluations: Sequence[Evaluation], steps: set[int] | None = None) -> list[Evaluation]:
    """The evaluations after step 0 (restricted to ``steps`` when given)."""
    return [e for e in evaluations if e.step > 0 and (steps is None or e.step in steps)]


def per_problem_metric(evaluations: Sequence[Evaluation], metric: str, problems: np.ndarray,
                       steps: set[int] | None = None) -> np.ndarray:
    """``avg_after_start`` (accuracy averaged over the evaluations after the start), ``avg_final`` (accuracy at
    the last evaluation) or ``pass@K_final`` (unbiased pass@K at the last evaluation), per problem."""
    if metric == "avg_after_start":
        later = after_start(evaluations, steps)
        if not later:
            raise ValueError("no held-out evaluation after the start to average.")
        return np.mean([accuracy(e, problems) for e in later], axis=0)
    final = evaluations[-1]
    if metric == "avg_final":
        return accuracy(final, problems)
    if metric.startswith("pass@") and metric.endswith("_final"):
        return pass_per_problem(final, problems, int(metric[5:-6]))
    raise ValueError(f"unknown comparison metric {metric!r}.")


def paired_block(runs: dict[tuple[str, int], list[Evaluation]], arm: str, reference: str, metric: str,
                 problems: np.ndarray) -> tuple[list[int], np.ndarray]:
    """``(seeds, D)``: the seeds both arms finished and the ``(seeds, problems)`` matrix of arm minus reference;
    ``avg_after_start`` averages over the evaluation steps both runs of a seed have."""
    seeds = sorted(s for a, s in runs if a == arm and (reference, s) in runs)
    rows = []
    for seed in seeds:
        mine, ref = runs[(arm, seed)], runs[(reference, seed)]
        common = {e.step for e in mine} & {e.step for e in ref}
        rows.append(per_problem_metric(mine, metric, problems, common)
                    - per_problem_metric(ref, metric, problems, common))
    return seeds, np.asarray(rows, dtype=float).reshape(len(seeds), len(problems))


def _mean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.fmean(values) if values else None


def _average_curves(curves: Sequence[dict[int, float]]) -> dict[int, float]:
    ks = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    return {k: statistics.fmean(c[k] for c in curves) for k in ks}


def summarize_comparison(runs: dict[tuple[str, int], list[Evaluation]], start: StartEvaluation | None,
                         arms: Sequence[str], reference: str | None = "grpo",
                         edges: Sequence[float] = DEFAULT_STRATA_EDGES,
                         bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP) -> dict[str, Any]:
    """Everything ``compare.json`` holds: per arm and evaluation point avg@k and pass@k (mean over seeds and per
    seed), the mean after the start, pass@k curves at the final evaluation, the same per stratum, and the paired
    differences to ``reference`` per seed and overall with bootstrap intervals (per stratum too, and the
    difference of differences of each lower stratum, and of all lower strata together, to the top stratum).

    ``runs`` maps ``(arm, seed)`` to that run's evaluations (sorted by step); arms without runs are skipped.
    Raises ``ValueError`` when runs disagree on the held-out problems.
    """
    arms = [a for a in arms if any(key[0] == a for key in runs)]
    problems = scorable_problems([e for evs in runs.values() for e in evs], start)
    labels = stratum_labels(edges)
    strata, assignment = None, []
    if start is not None:
        assignment = assign_strata(start.strata_counts(), start.strata_samples, edges)
        strata = {label: np.asarray([j for j, i in enumerate(problems) if assignment[i] == label], dtype=np.intp)
                  for label in labels}
    final_samples = min((evs[-1].samples for evs in runs.values()), default=0)
    metrics = [*METRICS, f"pass@{final_samples}_final"] if final_samples else list(METRICS)
    start_eval = start.evaluation() if start else None

    out: dict[str, Any] = {
        "problems": len(problems), "problem_indices": problems.tolist(), "reference": reference,
        "metrics": metrics, "bootstrap": bootstrap.to_dict(),
        "strata": None if strata is None else {
            "edges": list(edges), "labels": labels, "samples": start.strata_samples, "seed": start.seed,
            "counts": {label: len(cols) for label, cols in strata.items()},
            "assignment": [assignment[i] for i in problems]},
        "start": None, "arms": {}, "paired": {},
    }
    if start_eval is not None:
        acc = accuracy(start_eval, problems)
        curve = pass_curve([start_eval.correct[i] for i in problems], start_eval.samples)
        out["start"] = {"samples": start_eval.samples, "avg": float(acc.mean()), "pass": curve,
                        "strata": {label: {"problems": len(cols), "avg": float(acc[cols].mean()) if len(cols) else None,
                                           "pass": pass_curve([start_eval.correct[problems[j]] for j in cols],
                                                              start_eval.samples) if len(cols) else {}}
                                   for label, cols in (strata or {}).items()}}

    for arm in arms:
        seeds = sorted(s for a, s in runs if a == arm)
        steps = sorted({e.step for s in seeds for e in runs[(arm, s)]})
        points = {}
        for step in steps:
            at = {s: next(e for e in runs[(arm, s)] if e.step == step) for s in seeds
                  if any(e.step == step for e in runs[(arm, s)])}
            points[str(step)] = {"seeds": sorted(at), "samples": min(e.samples for e in at.values()),
                                 "avg": _mean([float(accuracy(e, problems).mean()) for e in at.values()]),
                                 "avg_per_seed": {str(s): float(accuracy(e, problems).mean()) for s, e in at.items()},
                                 "pass": _average_curves([pass_curve([e.correct[i] for i in problems], e.samples)
                                                          for e in at.values()]),
                                 "strata": {label: _mean([float(accuracy(e, problems)[cols].mean())
                                                          for e in at.values()])
                                            for label, cols in (strata or {}).items() if len(cols)}}
        per_seed = {s: {m: per_problem_metric(runs[(arm, s)], m, problems) for m in metrics
                        if m != f"pass@{final_samples}_final" or runs[(arm, s)][-1].samples >= final_samples}
                    for s in seeds}
        curves = {s: pass_curve([runs[(arm, s)][-1].correct[i] for i in problems], runs[(arm, s)][-1].samples)
                  for s in seeds}
        entry = {"seeds": seeds, "final_step": {str(s): runs[(arm, s)][-1].step for s in seeds}, "heldout": points,
                 **{m: {"mean": _mean([float(v[m].mean()) for v in per_seed.values() if m in v]),
                        "per_seed": {str(s): float(v[m].mean()) for s, v in per_seed.items() if m in v}}
                    for m in metrics},
                 "pass": _average_curves(list(curves.values())), "strata": {}}
        for label, cols in (strata or {}).items():
            if not len(cols):
                continue
            entry["strata"][label] = {
                "problems": len(cols),
                **{m: _mean([float(v[m][cols].mean()) for v in per_seed.values() if m in v]) for m in metrics},
                "pass": _average_curves([pass_curve([runs[(arm, s)][-1].correct[problems[j]] for j in cols],
                                                    runs[(arm, s)][-1].samples) for s in seeds])}
        out["arms"][arm] = entry

    if reference in out["arms"]:
        for arm in arms:
            if arm == reference:
                continue
            out["paired"][arm] = {m: paired_statistics(runs, arm, reference, m, problems, strata, labels, bootstrap)
                                  for m in metrics}
    return out


def paired_statistics(runs, arm: str, reference: str, metric: str, problems: np.ndarray,
                      strata: dict[str, np.ndarray] | None, labels: Sequence[str],
                      bootstrap: BootstrapConfig) -> dict[str, Any] | None:
    """Paired difference of ``metric`` (arm minus reference): per seed, overall, per stratum and the contrasts of
    the lower strata to the top one, each with its bootstrap interval; ``None`` when no seed has both arms."""
    seeds, diff = paired_block(runs, arm, reference, metric, problems)
    if not seeds:
        return None
    result: dict[str, Any] = {
        "per_seed": {str(s): paired_difference(diff[i : i + 1], bootstrap) for i, s in enumerate(seeds)},
        "overall": paired_difference(diff, bootstrap), "strata": {}, "contrasts": {}}
    if strata:
        for label, cols in strata.items():
            if len(cols):
                result["strata"][label] = paired_difference(diff[:, cols], bootstrap)
        top = labels[-1]
        lower = [label for label in labels[:-1] if len(strata[label])]
        groups = {f"{label} - {top}": strata[label] for label in lower}
        if len(lower) > 1:
            groups[f"{'+'.join(lower)} - {top}"] = np.concatenate([strata[label] for label in lower])
        for name, cols in groups.items():
            if len(strata[top]):
                result["contrasts"][name] = difference_of_differences(diff, cols, strata[top], bootstrap)
    return result


# ---- Markdown -------------------------------------------------------------------------------------------------


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * value:{'+' if signed else ''}.1f}"


def _ci(stat: dict | None) -> str:
    if not stat:
        return "—"
    if stat.get("low") is None:
        return _pct(stat["mean"], signed=True)
    return f"{_pct(stat['mean'], signed=True)} [{_pct(stat['low'], True)}, {_pct(stat['high'], True)}]"


def markdown_comparison(result: dict[str, Any]) -> str:
    """The tables of ``compare.md`` (scores in %)."""
    arms, start, metrics = result["arms"], result["start"], result["metrics"]
    pass_metric = next((m for m in metrics if m.startswith("pass@")), None)
    boot = result["bootstrap"]
    lines = settings_lines(result.get("settings"))
    lines += [f"Held-out problems: {result['problems']}. Scores in % (mean over seeds); intervals are "
             f"{100 * boot['confidence']:g} % {boot['method']} intervals of `scipy.stats.bootstrap` "
             f"({boot['resamples']} resamples, seed {boot['seed']}), resampling seeds and problems independently "
             "(two-way cluster bootstrap).", ""]
    steps = sorted({int(s) for a in arms.values() for s in a["heldout"]})
    lines += ["## Held-out avg@k by evaluation step", "",
              "| arm | seeds | start | " + " | ".join(f"step {s}" for s in steps)
              + " | mean after start | " + (f"{pass_metric.removesuffix('_final')} final |" if pass_metric else ""),
              "|---|---|---|" + "---|" * len(steps) + "---|" + ("---|" if pass_metric else "")]
    for name, arm in arms.items():
        begin = start["avg"] if start else (arm["heldout"].get("0") or {}).get("avg")
        cells = [_pct(arm["heldout"].get(str(s), {}).get("avg")) for s in steps]
        lines.append(f"| {name} | {len(arm['seeds'])} | {_pct(begin)} | " + " | ".join(cells)
                     + f" | {_pct(arm['avg_after_start']['mean'])} |"
                     + (f" {_pct(arm[pass_metric]['mean'])} |" if pass_metric else ""))
    lines.append("")
    if result["paired"]:
        lines += [f"## Paired difference to {result['reference']} (arm − {result['reference']}, same seed)", "",
                  "| arm | metric | per seed | overall [95 % CI] |", "|---|---|---|---|"]
        for name, paired in result["paired"].items():
            for metric, stat in paired.items():
                if stat is None:
                    continue
                per_seed = ", ".join(f"s{s} {_pct(v['mean'], True)}" for s, v in stat["per_seed"].items())
                lines.append(f"| {name} | {metric} | {per_seed} | {_ci(stat['overall'])} |")
        lines.append("")
    strata = result["strata"]
    if strata:
        labels = [label for label in strata["labels"] if strata["counts"].get(label)]
        lines += ["## Difficulty strata", "",
                  f"Strata from the starting model's own accuracy on {strata['samples']} samples per problem "
                  f"(edges {strata['edges']}); the start column uses separate samples. avg after start in %.", "",
                  "| arm | " + " | ".join(f"{label} (n={strata['counts'][label]})" for label in labels) + " |",
                  "|---|" + "---|" * len(labels)]
        if start:
            lines.append("| start | " + " | ".join(_pct(start["strata"][label]["avg"]) for label in labels) + " |")
        for name, arm in arms.items():
            lines.append(f"| {name} | " + " | ".join(_pct(arm["strata"].get(label, {}).get("avg_after_start"))
                                                    for label in labels) + " |")
        lines += ["", "avg@k per stratum at each evaluation step (mean over seeds), in %:", "",
                  "| arm | step | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
        for name, arm in arms.items():
            for step, point in sorted(arm["heldout"].items(), key=lambda item: int(item[0])):
                lines.append(f"| {name} | {step} | " + " | ".join(_pct(point["strata"].get(label))
                                                                   for label in labels) + " |")
        if result["paired"]:
            lines += ["", f"Paired difference to {result['reference']} per stratum [95 % CI], and the difference of "
                      "differences (gain in a lower stratum minus gain in the top one):", "",
                      "| arm | metric | " + " | ".join(labels) + " | contrasts |",
                      "|---|---|" + "---|" * (len(labels) + 1)]
            for name, paired in result["paired"].items():
                for metric, stat in paired.items():
                    if not stat:
                        continue
                    contrasts = "; ".join(f"{k}: {_ci(v)}" for k, v in stat["contrasts"].items())
                    lines.append(f"| {name} | {metric} | "
                                 + " | ".join(_ci(stat["strata"].get(label)) for label in labels)
                                 + f" | {contrasts or '—'} |")
        lines.append("")
    lines += exploration_table(result)
    return "\n".join(lines) + "\n"


def settings_lines(settings: dict[str, Any] | None) -> list[str]:
    """The shared ``rlrt train`` flags and each arm's own, as two lines of Markdown."""
    if not settings:
        return []
    shared = ", ".join(f"{k}={v}" for k, v in settings["shared"].items())
    arms = "; ".join(f"**{name}**: " + (", ".join(f"{k}={v}" for k, v in flags.items()) or "—")
                     for name, flags in settings["arms"].items())
    return [f"Shared train flags: {shared}.", "", f"Arms: {arms}.", ""]


def exploration_table(result: dict[str, Any]) -> list[str]:
    """pass@k at the final evaluation per arm (and start), for all problems and per stratum."""
    curves = curves_by_panel(result)
    if not curves:
        return []
    lines = ["## Exploration: pass@k at the final evaluation", ""]
    for panel, lines_ in curves.items():
        ks = sorted({k for c in lines_.values() for k in c})
        lines += [f"**{panel}**", "", "| | " + " | ".join(f"pass@{k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
        for name, curve in lines_.items():
            lines.append(f"| {name} | " + " | ".join(_pct(curve.get(k)) for k in ks) + " |")
        lines.append("")
    return lines


def curves_by_panel(result: dict[str, Any]) -> dict[str, dict[str, dict[int, float]]]:
    """``{panel: {line: {k: pass@k}}}``: panel ``all`` and one per non-empty stratum; lines are ``start`` (when
    evaluated) and each arm."""
    def norm(curve):
        return {int(k): v for k, v in curve.items()}

    panels: dict[str, dict[str, dict[int, float]]] = {"all problems": {}}
    if result["start"]:
        panels["all problems"]["start"] = norm(result["start"]["pass"])
    for name, arm in result["arms"].items():
        panels["all problems"][name] = norm(arm["pass"])
    if result["strata"]:
        for label in result["strata"]["labels"]:
            count = result["strata"]["counts"].get(label, 0)
            if not count:
                continue
            panel = panels.setdefault(f"{label} (n={count})", {})
            if result["start"]:
                panel["start"] = norm(result["start"]["strata"][label]["pass"])
            for name, arm in result["arms"].items():
                if label in arm["strata"]:
                    panel[name] = norm(arm["strata"][label]["pass"])
    return {k: v for k, v in panels.items() if v}


def plot_pass_curves(result: dict[str, Any], path: str | Path) -> Path | None:
    """One figure, a panel per stratum (and one for all problems): pass@k against k on a log2 axis, a line per
    arm (mean over seeds) and the starting model dashed. Returns the path, or ``None`` with nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = curves_by_panel(result)
    if not panels:
        return None
    names = list(result["arms"])
    colors = {name: f"C{i % 10}" for i, name in enumerate(names)}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (panel, curves) in zip(axes[0], panels.items()):
        for name, curve in curves.items():
            ks = sorted(curve)
            ax.plot(ks, [curve[k] for k in ks], marker="o", markersize=3, label=name,
                    color="black" if name == "start" else colors[name], linestyle="--" if name == "start" else "-")
        ax.set_xscale("log", base=2)
        ks = sorted({k for curve in curves.values() for k in curve})
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("k", fontsize=8)
        ax.set_ylabel("pass@k", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
