"""``rlrt report``: plots and tables comparing run folders written by ``rlrt train``.

Runs that share a label (by default their ``shaping``) are drawn as one line, the mean over runs, with a
min-max band. The candidate-set shift compares each run's final model with its starting model on the same
contexts (rollouts of the starting model on held-out prompts): the fraction of positions where the trained
model's top-1 token had probability below 1e-3 under the starting model.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..data.tasks import DEFAULT_EVAL_DATASET
from ..io import read_jsonl, refuse_foreign_folder, refuse_other_arguments, write_json
from ..models import DEFAULT_MODEL

PLOTTED = (
    "reward", "heldout", "entropy", "completions/mean_length", "rlrt/weight_mean", "rlrt/multiplier_mean",
    "rlrt/self_driven_frac", "rlrt/log_ratio_mean", "rlrt/shaped_frac", "rlrt/clip_high_frac", "rlrt/clip_low_frac",
    "rlrt/teacher_seconds",
)


@dataclass
class ReportArguments:
    runs: list[str] = field(default_factory=list, metadata={"help": "Run folders written by `rlrt train`."})
    output_dir: str = field(default="report", metadata={"help": "Where the plots, table and report.md go."})
    labels: list[str] | None = field(default=None, metadata={"help": "One label per run (default: its shaping)."})
    shift_contexts: int = field(default=16, metadata={"help": "Held-out prompts whose rollouts are the contexts."})
    shift_max_new_tokens: int = field(default=48, metadata={"help": "Length of each candidate-set shift rollout."})
    shift_threshold: float = field(default=1e-3, metadata={
        "help": "A trained model's top-1 token counts as new when the base model gave it less than this probability."})
    skip_shift: bool = field(default=False, metadata={"help": "Skip the candidate-set shift (no model loading)."})

    def __post_init__(self):
        for name, low in {"shift_contexts": 1, "shift_max_new_tokens": 1}.items():
            if getattr(self, name) < low:
                raise ValueError(f"--{name} must be >= {low}; got {getattr(self, name)}.")


def load_run(run_dir: str | Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder of `rlrt train` (no metrics.jsonl).")
    config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    return {"dir": run_dir, "config": config,
            "metrics": [m for m in read_jsonl(run_dir / "metrics.jsonl") if "loss" in m],
            "heldout": read_jsonl(run_dir / "heldout.jsonl")}


def heldout_key(run: dict[str, Any]) -> str | None:
    keys = [k for entry in run["heldout"] for k in entry if k.startswith("avg@")]
    return keys[0] if keys else None


def pass_key(run: dict[str, Any]) -> str | None:
    """The largest ``pass@k`` in the run's held-out records."""
    return max((k for e in run["heldout"] for k in e if k.startswith("pass@")), key=lambda k: int(k.split("@")[1]),
               default=None)


def series(run: dict[str, Any], metric: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of one metric; ``"heldout"`` is the held-out avg@k from ``heldout.jsonl``."""
    if metric == "heldout":
        key = heldout_key(run)
        rows = [(e["step"], e[key]) for e in run["heldout"] if key and key in e]
    else:
        rows = [(e["step"], e[metric]) for e in run["metrics"] if isinstance(e.get(metric), (int, float))]
    return [r[0] for r in rows], [float(r[1]) for r in rows]


def aggregate(runs: list[dict[str, Any]], metric: str) -> tuple[list[int], list[float], list[float], list[float]]:
    """Mean, min and max over runs at the steps all of them logged."""
    per_run = [dict(zip(*series(r, metric))) for r in runs]
    steps = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    values = [[p[s] for p in per_run] for s in steps]
    return steps, [statistics.fmean(v) for v in values], [min(v) for v in values], [max(v) for v in values]


def plot_metrics(groups: dict[str, list[dict[str, Any]]], output_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    available = [m for m in PLOTTED if any(series(r, m)[0] for runs in groups.values() for r in runs)]
    # One color per variant in every panel (a panel where a variant has no data must not shift the others).
    colors = {label: f"C{i % 10}" for i, label in enumerate(groups)}
    cols = 3
    rows = (len(available) + cols - 1) // cols
    overview, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for index, metric in enumerate(available):
        single, ax_single = plt.subplots(figsize=(6, 3.6))
        for ax in (ax_single, axes[index // cols][index % cols]):
            for label, runs in groups.items():
                steps, mean, low, high = aggregate(runs, metric)
                if not steps:
                    continue
                ax.plot(steps, mean, label=f"{label} (n={len(runs)})", color=colors[label],
                        marker="o" if metric == "heldout" else None, markersize=3)
                if len(runs) > 1:
                    ax.fill_between(steps, low, high, color=colors[label], alpha=0.15)
            if metric == "heldout":
                title = "held-out " + (heldout_key(next(iter(groups.values()))[0]) or "avg@k")
            else:
                title = metric
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("step", fontsize=8)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
        ax_single.legend(fontsize=8)
        single.tight_layout()
        path = output_dir / f"{metric.replace('/', '_')}.png"
        single.savefig(path, dpi=110)
        plt.close(single)
        written.append(path)
    for index in range(len(available), rows * cols):
        axes[index // cols][index % cols].axis("off")
    if available:
        axes[0][0].legend(fontsize=8)
    overview.tight_layout()
    path = output_dir / "overview.png"
    overview.savefig(path, dpi=100)
    plt.close(overview)
    return [path, *written]


def mean_std(values: list[float], signed: bool = False) -> str:
    """Fractions as '%' text: the value for one, 'mean ± std' for several, '' for none; ``signed`` writes the
    mean with its sign (for differences)."""
    if not values:
        return ""
    mean = f"{100 * statistics.fmean(values):{'+' if signed else ''}.1f}"
    return mean if len(values) == 1 else f"{mean} ± {100 * statistics.stdev(values):.1f}"


def finite_mean(values: list[float], digits: int) -> str:
    """The mean of the finite ``values`` as text with ``digits`` decimals; ``"—"`` when none is finite (a metric
    the runs did not log, e.g. entropy under TRL's SDPO trainer)."""
    finite = [v for v in values if math.isfinite(v)]
    return f"{statistics.fmean(finite):.{digits}f}" if finite else "—"


def summary_rows(groups: dict[str, list[dict[str, Any]]], shift: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for label, runs in groups.items():
        key = heldout_key(runs[0])
        first = [r["heldout"][0][key] for r in runs if r["heldout"] and key in r["heldout"][0]]
        last = [r["heldout"][-1][key] for r in runs if r["heldout"] and key in r["heldout"][-1]]
        first_steps = [r["heldout"][0].get("step") for r in runs if r["heldout"] and key in r["heldout"][0]]
        last_steps = [r["heldout"][-1].get("step") for r in runs if r["heldout"] and key in r["heldout"][-1]]
        top_pass = pass_key(runs[0])
        last_pass = [r["heldout"][-1][top_pass] for r in runs
                     if top_pass and r["heldout"] and top_pass in r["heldout"][-1]]
        tail = lambda r, m: statistics.fmean(series(r, m)[1][-5:]) if series(r, m)[1] else float("nan")  # noqa: E731
        shifts = [shift[str(r["dir"])]["rate"] for r in runs if str(r["dir"]) in shift]
        rows.append({
            "label": label, "runs": len(runs),
            "steps": max((r["metrics"][-1]["step"] for r in runs if r["metrics"]), default=0),
            "heldout_metric": key, "heldout_first": first, "heldout_last": last, "heldout_first_step": first_steps,
            "heldout_last_step": last_steps, "pass_metric": top_pass,
            "pass_last": last_pass, "reward_last5": [tail(r, "reward") for r in runs],
            "entropy_last5": [tail(r, "entropy") for r in runs],
            "length_last5": [tail(r, "completions/mean_length") for r in runs], "candidate_shift": shifts,
        })
    return rows


def at_steps(values: list[float], steps: list[int | None]) -> str:
    """``mean_std(values)`` with the training step(s) it was measured at: ``"25.0 (step 0)"``, ``"25.0 ± 1.0
    (steps 0, 10)"`` when the runs differ; ``""`` for no values."""
    if not values:
        return ""
    known = sorted({s for s in steps if s is not None})
    where = f" (step {known[0]})" if len(known) == 1 else f" (steps {', '.join(map(str, known))})" if known else ""
    return mean_std(values) + where


def markdown_summary(rows: list[dict[str, Any]]) -> str:
    """The report table; the held-out cells name the step they were measured at, so that a first evaluation after
    training started (a run without a step-0 evaluation, e.g. one of ``rlrt compare``) is not read as the starting
    model's score."""
    lines = ["| variant | runs | steps | held-out first (step) | held-out last (step) | pass@k last | "
             "train reward (last 5) | "
             "entropy (last 5) | length (last 5) | low-prob → top-1 (per 1k positions) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shift = (f"{1000 * statistics.fmean(r['candidate_shift']):.2f}" if r["candidate_shift"] else "")
        lines.append(
            f"| {r['label']} | {r['runs']} | {r['steps']} | "
            f"{at_steps(r['heldout_first'], r.get('heldout_first_step', []))} | "
            f"{at_steps(r['heldout_last'], r.get('heldout_last_step', []))} | "
            f"{mean_std(r['pass_last'])} | {mean_std(r['reward_last5'])} | "
            f"{finite_mean(r['entropy_last5'], 3)} | {finite_mean(r['length_last5'], 1)} | {shift} |"
        )
    metric = rows[0]["heldout_metric"] if rows else "avg@k"
    return ("Held-out columns are " + str(metric) + " and the largest pass@k, in %, mean ± std over runs, at the "
            "training step in brackets: step 0 is the starting model; a later first step means the run had no "
            "step-0 evaluation, so that column is not the starting model's score.\n\n"
            + "\n".join(lines) + "\n")


def candidate_shift_for_runs(runs: list[dict[str, Any]], args: ReportArguments) -> dict[str, dict[str, Any]]:
    """Per run: promoted positions / counted positions, on shared contexts from the starting model."""
    import torch

    from ..data.registry import load_task, split_spec
    from ..evaluation.sampling import SamplingConfig, sample_completion_ids
    from ..models import load_model, load_tokenizer, resolve_model
    from ..teacher import render_prompt
    from .asymmetry import candidate_shift
    from .inspect_run import response_logits

    by_base: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_base[run["config"].get("train", {}).get("model", DEFAULT_MODEL)].append(run)
    results: dict[str, dict[str, Any]] = {}
    for base_name, base_runs in by_base.items():
        base_path = resolve_model(base_name)
        tokenizer = load_tokenizer(base_path)
        base = load_model(base_path)
        spec = base_runs[0]["config"].get("train", {}).get("eval_dataset") or DEFAULT_EVAL_DATASET
        name, split = split_spec(spec if spec.lower() != "none" else DEFAULT_EVAL_DATASET)
        prompts = load_task(name, split=split, limit=args.shift_contexts)["prompt"]
        sampling = SamplingConfig(max_new_tokens=args.shift_max_new_tokens, seed=0, batch_size=32)
        contexts = [(render_prompt(tokenizer, p), ids[0]) for p, ids in
                    zip(prompts, sample_completion_ids(base, tokenizer, prompts, 1, sampling)) if ids[0]]
        base_logits = [response_logits(base, p, c) for p, c in contexts]
        del base
        for run in base_runs:
            final = run["dir"] / "final"
            if not final.is_dir():
                continue
            model = load_model(str(final))
            promoted = positions = 0
            for (prompt_ids, completion), logits in zip(contexts, base_logits):
                trained = response_logits(model, prompt_ids, completion)
                count, total = candidate_shift(logits.unsqueeze(0), trained.unsqueeze(0),
                                               torch.ones(1, len(completion)), args.shift_threshold)
                promoted, positions = promoted + count, positions + total
            results[str(run["dir"])] = {"promoted": promoted, "positions": positions,
                                        "rate": promoted / max(positions, 1), "threshold": args.shift_threshold}
            del model
    return results


def write_report(args: ReportArguments, replace: bool = False) -> dict[str, Path]:
    """Plots, ``summary.json`` (with the arguments that made it, run folders as normalised paths) and ``report.md``
    in ``args.output_dir``; their paths by name. Unless ``replace`` (a caller that owns the folder, as ``rlrt
    compare``), raises ``ValueError`` when ``output_dir`` is a run or comparison folder (``io.FOLDER_MARKERS``) or
    holds a ``summary.json`` that is not a report of the same arguments: another command's file, a report of other
    runs or flags (its candidate-set shift cost sampling), or a report from before reports recorded arguments."""
    if not args.runs:
        raise ValueError("rlrt report needs at least one run folder: rlrt report --runs runs/a runs/b")
    runs = [load_run(r) for r in args.runs]
    if args.labels and len(args.labels) != len(runs):
        raise ValueError(f"{len(args.labels)} labels for {len(runs)} runs: give one label per run.")
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i, run in enumerate(runs):
        label = args.labels[i] if args.labels else run["config"].get("rlrt", {}).get("shaping", run["dir"].name)
        groups[label].append(run)
    out = Path(args.output_dir)
    arguments = {**asdict(args), "runs": [os.path.normpath(r) for r in args.runs]}  # runs/a/ is runs/a
    if not replace:
        refuse_foreign_folder(out, "rlrt report")
        _refuse_unrecorded_report(out / "summary.json")
        refuse_other_arguments(out / "summary.json", arguments)
    out.mkdir(parents=True, exist_ok=True)
    shift = {} if args.skip_shift else candidate_shift_for_runs(runs, args)
    plots = plot_metrics(groups, out)
    rows = summary_rows(groups, shift)
    write_json(out / "summary.json", {"arguments": arguments, "groups": rows, "candidate_shift": shift},
               indent=2, default=str)
    table = markdown_summary(rows)
    images = "\n".join(f"![{p.stem}]({p.name})" for p in plots[:1])
    run_dirs = ", ".join(str(r["dir"]) for r in runs)
    (out / "report.md").write_text(f"# rlrt report\n\nRuns: {run_dirs}\n\n{table}\n{images}\n")
    return {"report": out / "report.md", "summary": out / "summary.json", "overview": plots[0]}


def _refuse_unrecorded_report(path: Path) -> None:
    """Raises ``ValueError`` when ``path`` is the ``summary.json`` of a report made before reports recorded their
    arguments (``groups``, no ``arguments``): what it was made from is unknown, so it is not overwritten."""
    try:
        payload = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return  # not a report's: refuse_other_arguments names it
    if isinstance(payload, dict) and "groups" in payload and "arguments" not in payload:
        raise ValueError(f"{path} is an rlrt report made before reports recorded their arguments, so what it was made "
                         f"from is unknown: move it away (or choose another --output_dir) to write a new one there.")


COMMAND_ARGUMENTS = (ReportArguments,)


def run_report(args: ReportArguments) -> int:
    """``rlrt report``: write the report and print it; the exit code."""
    paths = write_report(args)
    print(paths["report"].read_text())
    print(f"report: {paths['report']}  plots: {paths['overview'].parent}")
    return 0
