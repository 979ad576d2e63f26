"""``rlrt compare``: arms x seeds on one model and dataset, then paired statistics, strata and exploration curves.

    rlrt compare --arms grpo rlrt grpo_ent:shaping=grpo,entropy_coef=0.01 --seeds 0 1 2 --output_dir cmp
    rlrt compare --config experiment.yaml                 # arms, seeds, shared train flags, evaluation settings
    rlrt compare --config experiment.yaml --only start rlrt-s0   # some runs only (e.g. one per GPU job)
    rlrt compare --config experiment.yaml --report_only   # compare.json / compare.md from the finished runs

An arm is a name plus ``rlrt train`` flags: a bare shaping name (``grpo``, ``rlrt``, ``teacher_up``, ``rlrt_all``,
``rlsd``, ``sdpo``) or ``name:key=value,key=value``. Each run is an ``rlrt train`` subprocess in
``<output_dir>/<arm>-s<seed>/``, one after another; every arm of a seed gets the same ``--seed`` (data order and
sampling seed) and the same held-out problems. Rerunning skips finished runs (``summary.json`` at ``max_steps``,
so the decision needs only the small files) and resumes interrupted ones from their last complete checkpoint; a
run stopped before its first checkpoint is moved to ``<output_dir>/abandoned/`` and started over.

The starting model is evaluated once, before the runs (``<output_dir>/start/results.json``), with
``strata_samples`` + ``eval_final_samples`` samples per problem at sampling seed ``start_seed``: the first
``strata_samples`` decide each problem's difficulty stratum, the rest are the start's own avg@k and pass@k curve.
The statistics are in ``analysis/comparison.py`` and ``analysis/bootstrap.py``; docs/compare.md explains them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import SHAPINGS
from .io import refuse_foreign_folder, summary_steps, write_json
from .reliability import cut_completions_warning
from .text import did_you_mean

# `rlrt train` flags of every run unless the shared train flags or an arm say otherwise: the first reproduction's
# sizing (benchmarks/results/step_time.json: about 18 s per step on 2 CPU cores), checkpoints at every evaluation
# so a stopped run resumes, and 32 samples per problem at the final evaluation for pass@k curves up to k = 32.
COMPARE_TRAIN_DEFAULTS: dict[str, Any] = dict(
    max_steps=60, eval_every=15, eval_limit=64, eval_samples=4, eval_final_samples=32, eval_batch_size=64,
    per_device_train_batch_size=16, num_generations=8, max_completion_length=48, learning_rate=5e-6,
    lr_scheduler_type="constant", save_strategy="steps", save_steps=15, save_total_limit=1, disable_tqdm=True,
)
# --quick: the same pipeline in minutes (one seed, two steps, a few problems and samples).
QUICK_TRAIN: dict[str, Any] = dict(
    max_steps=2, eval_every=2, eval_limit=4, eval_samples=2, eval_final_samples=4, per_device_train_batch_size=8,
    num_generations=4, max_completion_length=24, save_steps=2,
)
# Set by compare for every run; an arm or the shared flags may not change them.
MANAGED_FLAGS = ("seed", "output_dir", "eval_start", "eval_dataset_seed", "resume")


@dataclass
class CompareArguments:
    """``rlrt compare`` options; every ``rlrt train`` flag goes in ``train`` (shared) or in an arm."""

    arms: list[str] = field(
        default_factory=lambda: ["grpo", "rlrt"],
        metadata={"help": "Arms: a shaping name (grpo, rlrt, teacher_up, rlrt_all, rlsd, sdpo) or "
                  "'name:key=value,key=value' with rlrt train flags, e.g. grpo_ent:shaping=grpo,entropy_coef=0.01. "
                  "In a --config file: a list of such strings, or a mapping name -> {flag: value} (optionally with "
                  "its own 'seeds')."},
    )
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "Seeds; every arm runs each one."})
    train: list[str] = field(
        default_factory=list,
        metadata={"help": "rlrt train flags shared by every run, as key=value (model=..., dataset=..., "
                  "max_steps=60, eval_limit=64, ...); in a --config file a mapping. Defaults: "
                  "COMPARE_TRAIN_DEFAULTS in rlrt/compare.py."},
    )
    output_dir: str = field(default="compare_runs", metadata={"help": "Runs go in <output_dir>/<arm>-s<seed>/."})
    reference: str = field(default="grpo", metadata={"help": "Arm the others are compared with (paired)."})
    only: list[str] | None = field(
        default=None,
        metadata={"help": "Run only these: 'start' (the starting model's evaluation), '<arm>-s<seed>', '<arm>' "
                  "(all its seeds) or 's<seed>' (all its arms); no report (jobs may run in parallel): --report_only "
                  "writes it afterwards."},
    )
    report_only: bool = field(default=False, metadata={"help": "Train nothing; write the report."})
    quick: bool = field(default=False, metadata={"help": "Minutes: seed 0, 2 steps, 4 problems (pipeline check)."})
    strata_edges: list[float] = field(
        default_factory=lambda: [0.6],
        metadata={"help": "Accuracy edges of the difficulty strata after 'never solved': 0.6 gives never, <60%%, "
                  ">=60%%."},
    )
    strata_samples: int = field(default=32, metadata={"help": "Starting-model samples per problem that set strata."})
    start_seed: int = field(default=1000, metadata={"help": "Sampling seed of the starting model's evaluation."})
    bootstrap_resamples: int = field(default=10_000, metadata={"help": "Bootstrap resamples of the paired CIs."})
    bootstrap_confidence: float = field(default=0.95, metadata={"help": "Confidence level of the intervals."})
    bootstrap_method: str = field(default="percentile", metadata={"help": "percentile, basic or BCa (scipy)."})
    bootstrap_seed: int = field(default=0, metadata={"help": "Seed of the bootstrap resampling."})
    launcher: str | None = field(
        default=None,
        metadata={"help": "Command that starts 'rlrt train' instead of 'python -m rlrt train', ending where the "
                  "module name goes, e.g. 'accelerate launch --num_processes 8 -m'."},
    )
    keep_checkpoints: bool = field(default=False, metadata={"help": "Keep checkpoint-* of finished runs."})
    skip_shift: bool = field(default=False, metadata={"help": "No candidate-set shift in the rlrt report part."})

    def __post_init__(self):
        from .evaluation.strata import check_edges

        check_edges(self.strata_edges)
        if self.strata_samples < 1:
            raise ValueError("strata_samples must be >= 1.")
        if self.quick:
            if list(self.seeds) != [0]:
                print(f"rlrt compare: --quick runs seed 0 only (--seeds {' '.join(map(str, self.seeds))} ignored)",
                      file=sys.stderr)
            self.seeds = [0]
            self.strata_samples = min(self.strata_samples, 4)


@dataclass(frozen=True)
class Arm:
    """A named set of ``rlrt train`` flags (``overrides``); ``seeds`` overrides the comparison's seeds."""

    name: str
    overrides: dict[str, Any]
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class PlannedRun:
    arm: str
    seed: int
    run_dir: Path
    flags: dict[str, Any]

    @property
    def name(self) -> str:
        return self.run_dir.name


def parse_value(text: str) -> Any:
    """``"0.01"`` -> 0.01, ``"true"`` -> True; anything else stays text (``rlrt train`` parses its flags)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_assignments(items: list[str] | str, where: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` or ``"a=1,b=x"`` -> ``{"a": 1, "b": "x"}``; raises ``ValueError`` on an item without '='."""
    if isinstance(items, str):
        items = [part for part in items.split(",") if part.strip()]
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"{where}: {item!r} is not key=value (e.g. entropy_coef=0.01).")
        out[key.strip().lstrip("-")] = parse_value(value)
    return out


def parse_arm(spec: str) -> Arm:
    """``"grpo"`` -> shaping grpo; ``"grpo_ent:shaping=grpo,entropy_coef=0.01"`` -> that name and those flags."""
    name, colon, rest = spec.partition(":")
    name = name.strip()
    if not name or "/" in name or name == "start":
        raise ValueError(f"arm {spec!r}: a name is needed (letters, digits, '_' or '-'; not 'start').")
    if not colon:
        if name not in SHAPINGS:
            raise ValueError(f"arm {name!r} is not a shaping variant{did_you_mean(name, SHAPINGS)}: use one of "
                             f"{list(SHAPINGS)}, or name a custom arm with its flags: "
                             f"'{name}:shaping=grpo,entropy_coef=0.01'.")
        return Arm(name, {"shaping": name})
    overrides = parse_assignments(rest, f"arm {name!r}")
    if name in SHAPINGS:
        overrides.setdefault("shaping", name)
    return Arm(name, overrides)


def arms_from(value: list[str] | dict[str, Any]) -> list[Arm]:
    """Arms from the command line (a list of specs) or a config file (that list, or ``{name: {flag: value}}``)."""
    if isinstance(value, dict):
        arms = []
        for name, flags in value.items():
            flags = dict(flags or {})
            seeds = flags.pop("seeds", None)
            if name in SHAPINGS:
                flags.setdefault("shaping", name)
            elif "shaping" not in flags:
                raise ValueError(f"arm {name!r} in the config file needs a 'shaping' (or a shaping name as its name).")
            arms.append(Arm(str(name), flags, tuple(int(s) for s in seeds) if seeds is not None else None))
    else:
        arms = [parse_arm(spec) for spec in value]
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"arm names must differ; got {names}.")
    for arm in arms:
        managed = sorted(set(arm.overrides) & set(MANAGED_FLAGS))
        if managed:
            raise ValueError(f"arm {arm.name!r} sets {managed}; compare sets these itself for every run.")
    return arms


def plan_runs(args: CompareArguments) -> list[PlannedRun]:
    """Seed by seed, every arm of seed 0 first: a partial comparison already holds complete paired seeds."""
    shared = args.train if isinstance(args.train, dict) else parse_assignments(args.train, "train")
    managed = sorted(set(shared) & set(MANAGED_FLAGS) - {"seed", "eval_dataset_seed"})
    if managed:
        raise ValueError(f"train flags {managed} are set by compare itself; leave them out.")
    if "seed" in shared:
        raise ValueError("give seeds with --seeds (compare runs every arm at each), not train seed=...")
    base = {**COMPARE_TRAIN_DEFAULTS, **(QUICK_TRAIN if args.quick else {}), **shared}
    out = Path(args.output_dir)
    arms = arms_from(args.arms)
    seeds = sorted({s for arm in arms for s in (arm.seeds or args.seeds)})
    plan = []
    for seed in seeds:
        for arm in arms:
            if seed not in (arm.seeds or args.seeds):
                continue
            run_dir = out / f"{arm.name}-s{seed}"
            flags = {**base, **arm.overrides, "seed": seed, "output_dir": str(run_dir), "eval_start": False,
                     "eval_dataset_seed": base.get("eval_dataset_seed", 0)}
            if "eval_dataset" not in flags and flags.get("dataset") is not None:
                flags["eval_dataset"] = held_out_of(flags["dataset"], run_dir.name)
            plan.append(PlannedRun(arm.name, seed, run_dir, flags))
    return plan


def held_out_of(dataset: str, where: str) -> str:
    """The held-out set when only ``dataset`` is given: the test split of a built-in or reasoning-gym task
    (``rlrt train`` alone would evaluate on ``addition:test``); raises ``ValueError`` for other sources, which
    have no known test split."""
    from .data.registry import held_out_split_of

    if (held_out := held_out_split_of(dataset)) is not None:
        return held_out
    raise ValueError(f"{where}: dataset {dataset} has no known held-out split; set eval_dataset in the train flags "
                     "(a file of held-out problems, or a hub preset's test split).")


def _flag_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):  # dataset_options, reward_options, sdpo_options: JSON on the command line
        return json.dumps(value)
    return str(value)


def flags_to_argv(flags: dict[str, Any]) -> list[str]:
    """``{"max_steps": 60, "reward_funcs": ["a", "b"], "bf16": False, "dataset_options": {"steps": 3}}`` ->
    ``--max_steps 60 --reward_funcs a b --bf16 false --dataset_options '{"steps": 3}'`` (``None`` values are left
    out: the flag's default applies)."""
    argv = []
    for key, value in flags.items():
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        argv += [f"--{key}", *(_flag_text(v) for v in values)]
    return argv


def parse_train_flags(flags: dict[str, Any], where: str, shared: dict[str, Any] | None = None):
    """``(TrainArguments, RLRTConfig)`` exactly as ``rlrt train`` parses ``flags`` (the same parser: no prefix
    abbreviations, the closest name for an unknown one); raises ``ValueError`` naming the run when a flag is
    unknown or invalid. ``shared``: the run's flags less its arm's own; an error they raise alone is named as the
    shared train flags' (every arm has it), one that names a flag of the arm as the arm's, any other (a clash
    between the two) as either's. ``run_compare`` parses every run's flags before any run starts."""
    from .parsing import parse_arguments
    from .run import COMMAND_ARGUMENTS, COMMAND_DEFAULTS

    def parse(values):
        return parse_arguments(COMMAND_ARGUMENTS, flags_to_argv(values), "rlrt train", defaults=COMMAND_DEFAULTS)

    try:
        return parse(flags)
    except (ValueError, TypeError) as err:
        if shared is not None:
            try:
                parse(shared)
            except (ValueError, TypeError) as shared_err:
                if str(shared_err) == str(err):
                    raise ValueError(f"the shared train flags (--train, or train: in the config file): {err}") \
                        from None
            own = [k for k in flags if k not in shared]
            named = any(re.search(rf"\b{re.escape(k)}\b", str(err)) for k in own)
            raise ValueError(f"{where}: {err} ({'fix the arm' if named else 'fix the arm or the shared train flags'})"
                             ) from None
        raise ValueError(f"{where}: {err} (fix the arm or the shared train flags)") from None


def finished(run_dir: Path, max_steps: int) -> bool:
    """Decided from the small files a fresh clone keeps: ``summary.json`` at ``max_steps``."""
    steps = summary_steps(run_dir)
    return steps is not None and steps >= max_steps


def stopped_short(run_dir: Path, max_steps: int) -> int | None:
    """The steps of a run that finished (``summary.json``) before ``max_steps`` and kept no checkpoint to continue
    from (a plan with fewer steps, e.g. ``--quick``); ``None`` for any other run."""
    from .reliability import last_complete_checkpoint

    steps = summary_steps(run_dir)
    if steps is None or steps >= max_steps or last_complete_checkpoint(run_dir) is not None:
        return None
    return steps


def short_runs_line(plan: list[PlannedRun], max_steps: dict[str, int]) -> str | None:
    """One line naming the runs that finished with fewer steps than this plan asks, and what to do; ``None`` if none."""
    short = [(r, n) for r in plan if (n := stopped_short(r.run_dir, max_steps[r.name])) is not None]
    if not short:
        return None
    named = ", ".join(f"{r.name} at step {n} of {max_steps[r.name]}" for r, n in short[:3])
    more = f" and {len(short) - 3} more" if len(short) > 3 else ""
    return (f"{named}{more} finished under a shorter plan and kept no checkpoint to continue from: pass the flags "
            f"they were launched with ({short[0][0].run_dir.parent / 'compare_settings.json'} records them, e.g. "
            "--quick true), or move those run folders away to train them again.")


def set_aside_unresumable(run_dir: Path, out: Path) -> Path | None:
    """Move a run stopped before its first complete checkpoint to ``out/abandoned/`` (kept, not deleted), so the
    run can start over: `rlrt train` refuses to write over logs it cannot resume. Returns the new place."""
    from .reliability import last_complete_checkpoint

    if (not (run_dir / "metrics.jsonl").is_file() or (run_dir / "summary.json").is_file()
            or last_complete_checkpoint(run_dir) is not None):
        return None
    target = out / "abandoned" / f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    target.parent.mkdir(parents=True, exist_ok=True)
    run_dir.rename(target)
    return target


def _same(planned: Any, recorded: Any) -> bool:
    if isinstance(planned, (list, tuple)) or isinstance(recorded, (list, tuple)):
        planned = planned if isinstance(planned, (list, tuple)) else [planned]
        recorded = recorded if isinstance(recorded, (list, tuple)) else [recorded]
        return len(planned) == len(recorded) and all(_same(a, b) for a, b in zip(planned, recorded))
    if isinstance(planned, bool) or isinstance(recorded, bool):
        return str(planned).lower() == str(recorded).lower()
    try:
        return float(planned) == float(recorded)
    except (TypeError, ValueError):
        return str(planned) == str(recorded)


def settings_drift(run: PlannedRun) -> list[str]:
    """The planned flags a finished run's ``config.json`` records with another value (``key: recorded -> planned``):
    a comparison whose settings changed after some runs finished would mix two experiments."""
    path = run.run_dir / "config.json"
    if not path.is_file():
        return []
    record = json.loads(path.read_text())
    recorded = {**record.get("rlrt", {}), **record.get("train", {})}
    return [f"{key}: {recorded[key]!r} -> {value!r}" for key, value in run.flags.items()
            if key != "output_dir" and key in recorded and value is not None and not _same(value, recorded[key])]


def selected(run: PlannedRun, only: list[str] | None) -> bool:
    """Whether ``--only`` names the run, its arm or its seed (``s1``)."""
    return only is None or run.name in only or run.arm in only or f"s{run.seed}" in only


def train_command(flags: dict[str, Any], launcher: str | None) -> list[str]:
    prefix = shlex.split(launcher) if launcher else [sys.executable, "-m"]
    return [*prefix, "rlrt", "train", *flags_to_argv(flags)]


# ---- The starting model ---------------------------------------------------------------------------------------


def start_path(out: Path) -> Path:
    return out / "start" / "results.json"


def start_drift(path: Path, train_args) -> list[str]:
    """What a starting-model ``results.json`` records differently from a run's parsed ``TrainArguments`` (model,
    held-out set), as ``key: recorded -> planned``; strata and curves of another model or data set are meaningless."""
    if not path.is_file():
        return []
    _, record = _start_record(path)
    planned = {"model": train_args.model, "dataset": train_args.eval_dataset,
               "dataset_seed": train_args.eval_dataset_seed}
    return [f"{key}: {record.get(key)!r} -> {value!r}" for key, value in planned.items()
            if value is not None and record.get(key) is not None and not _same(value, record[key])]


def _start_record(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A starting-model ``results.json`` and its one result, ``(payload, result)``; ``ValueError`` (one line) for a
    file of another layout."""
    try:
        payload = json.loads(path.read_text())
        record = payload["results"][0]
        if not isinstance(record, dict) or not isinstance(record["problems"], list):
            raise TypeError
    except (ValueError, KeyError, IndexError, TypeError):
        raise ValueError(f"{path} is not a starting-model results.json (rlrt compare's start, or rlrt eval's): move "
                         "it away, and compare evaluates the starting model again.") from None
    return payload, record


START_CHUNK = 16  # held-out problems per resumable chunk of the starting model's evaluation


def evaluate_start(train_args, config, samples: int, strata_samples: int, seed: int, path: Path,
                   chunk: int = START_CHUNK) -> Path:
    """Sample the starting model ``samples`` times per held-out problem (the runs' held-out set and sampling
    settings) and write ``results.json`` in ``rlrt eval``'s layout, without completion texts: per problem its answer
    and its samples' correctness (1/0), plus ``strata_samples``.

    Resumable: problems are sampled ``chunk`` at a time, chunk ``i`` (first problem ``f``) with sampling seed
    ``seed + f``, and each finished chunk is appended to ``results.partial.jsonl`` next to ``path`` -- a small file
    that can be committed, so an evaluation of the starting model stopped by the end of a session goes on from
    its last chunk in the next one, with the same samples as an uninterrupted pass. A partial file written with
    other settings (samples, seed, chunk, problems) is refused with one line naming the file."""
    from dataclasses import replace

    from .evaluation.metrics import summarize
    from .io import read_jsonl
    from .run import heldout_dataset, heldout_sampling

    dataset = heldout_dataset(train_args, config)
    if dataset is None:
        raise ValueError("compare needs a held-out set: set eval_dataset in the shared train flags (not 'none').")
    sampling = heldout_sampling(train_args, config)
    sampling.seed = seed
    partial = path.with_name("results.partial.jsonl")
    done = {}
    for record in read_jsonl(partial) if partial.is_file() else []:
        expected = {"samples": samples, "seed": seed + record.get("first", -1), "chunk": chunk}
        if {k: record.get(k) for k in expected} != expected or record["first"] >= len(dataset):
            raise ValueError(f"{partial} was written with other settings ({ {k: record.get(k) for k in expected} } "
                             f"vs {expected}); move it away to evaluate the starting model again.")
        done[record["first"]] = record
    model = tokenizer = None
    started = time.perf_counter()
    for first in range(0, len(dataset), chunk):
        if first in done:
            continue
        if model is None:
            model, tokenizer = _load_start_model(train_args, config)
        rows = dataset.select(range(first, min(first + chunk, len(dataset))))
        result = _evaluate(model, tokenizer, rows, samples, replace(sampling, seed=seed + first), train_args,
                           f"starting model, problems {first + 1}-{first + len(rows)} of {len(dataset)}")
        record = {"first": first, "chunk": chunk, "samples": samples, "seed": seed + first,
                  "problems": [{"answer": p["answer"], "correct": [None if x is None else int(x) for x in p["correct"]]}
                               for p in result["problems"]]}
        partial.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        done[first] = record
    problems = [p for first in sorted(done) for p in done[first]["problems"]]
    summary = summarize([p["correct"] for p in problems])
    summary["seconds_this_pass"] = round(time.perf_counter() - started, 2)
    payload = {
        "sampling": {**sampling.to_dict(), "seed": seed, "chunk": chunk,
                     "seed_rule": "seed + first problem of the chunk"},
        "strata_samples": strata_samples,
        "results": [{"model": train_args.model, "dataset": train_args.eval_dataset,
                     "dataset_seed": train_args.eval_dataset_seed, "summary": summary, "problems": problems}],
    }
    write_json(path, payload)
    partial.unlink()
    return path


def _load_start_model(train_args, config):
    import torch

    from .models import load_model, load_tokenizer, resolve_model

    path_or_name = resolve_model(train_args.model)
    model = load_model(path_or_name, config.trust_remote_code)
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model, load_tokenizer(path_or_name, config.trust_remote_code)


def _evaluate(model, tokenizer, dataset, samples, sampling, train_args, description):
    from .evaluation.evaluate import evaluate_model

    return evaluate_model(model, tokenizer, dataset, samples, sampling, description=description,
                          reward_config=train_args.reward_config)


def load_start(path: Path):
    """The ``StartEvaluation`` in a ``results.json`` of ``rlrt eval`` or of compare's start (``None`` if absent).
    Strata come from its first ``strata_samples`` samples per problem (all of them for ``rlrt eval``'s file)."""
    from .analysis.comparison import StartEvaluation

    if not path.is_file():
        return None
    payload, record = _start_record(path)
    problems = record["problems"]
    correct = [None if any(x is None for x in p["correct"]) else [int(x) for x in p["correct"]] for p in problems]
    strata_samples = payload.get("strata_samples") or min((len(c) for c in correct if c), default=0)
    return StartEvaluation(correct, strata_samples, payload.get("sampling", {}).get("seed"),
                           [p.get("answer") for p in problems])


# ---- Report ---------------------------------------------------------------------------------------------------


def write_comparison(args: CompareArguments, plan: list[PlannedRun],
                     max_steps: dict[str, int]) -> dict[str, Any] | None:
    """compare.json, compare.md, pass_at_k.png and the ``rlrt report`` plots from the finished runs."""
    from .analysis.bootstrap import BootstrapConfig
    from .analysis.comparison import (
        evaluations_from_records,
        markdown_comparison,
        plot_pass_curves,
        summarize_comparison,
    )
    from .analysis.dynamics import dynamics_table, run_dynamics
    from .analysis.report import ReportArguments
    from .analysis.report import write_report as write_run_report
    from .io import read_jsonl

    out = Path(args.output_dir)
    done = [r for r in plan if finished(r.run_dir, max_steps[r.name])]
    if not done:
        short = short_runs_line(plan, max_steps)
        print(f"rlrt compare: no finished runs yet; nothing to report{f' ({short})' if short else ''}",
              file=sys.stderr)
        return None
    drift = {r.name: d for r in done if (d := settings_drift(r))}
    for name, changes in drift.items():
        print(f"rlrt compare: warning: {name} was trained with other settings than this plan ({'; '.join(changes)})",
              file=sys.stderr)
    runs = {(r.arm, r.seed): evaluations_from_records(read_jsonl(r.run_dir / "heldout.jsonl"), str(r.run_dir))
            for r in done}
    start = load_start(start_path(out))
    arm_names = list(dict.fromkeys(r.arm for r in plan))
    bootstrap = BootstrapConfig(args.bootstrap_resamples, args.bootstrap_confidence, args.bootstrap_method,
                                args.bootstrap_seed)
    result = summarize_comparison(runs, start, arm_names, args.reference, args.strata_edges, bootstrap)
    result["runs"] = {"planned": [r.name for r in plan], "finished": [r.name for r in done]}
    result["dynamics"] = {r.name: run_dynamics(read_jsonl(r.run_dir / "metrics.jsonl")) for r in done}
    result["settings"] = plan_settings(args, plan)
    result["settings_drift"] = drift
    write_json(out / "compare.json", result, indent=1)
    curves = plot_pass_curves(result, out / "pass_at_k.png")
    paths = write_run_report(ReportArguments(
        runs=[str(r.run_dir) for r in done], labels=[r.arm for r in done], output_dir=str(out / "report"),
        skip_shift=args.skip_shift, shift_contexts=4 if args.quick else 64,
        shift_max_new_tokens=int(done[0].flags.get("max_completion_length", 48))), replace=True)
    start_note = "" if start else ("\nNo starting-model evaluation yet (`--only start`): no strata, no start curve.\n")
    if drift:
        start_note += ("\n**Warning: runs trained with other settings than this plan** (recorded -> planned): "
                       + "; ".join(f"{name}: {', '.join(changes)}" for name, changes in drift.items()) + ".\n")
    for r in done:  # a run that mostly ran into the length cap measured the cap, not the arm: said at the top
        cut = (result["dynamics"][r.name].get("completions/clipped_ratio") or {}).get("late")
        warning = cut_completions_warning(cut, r.flags.get("max_completion_length"), f" of {r.name}'s last steps",
                                          "raise it with --train max_completion_length=N (or in the arm)")
        if warning:
            start_note += f"\n**{warning}**\n"
    images = "".join(f"![{p.stem}]({p.relative_to(out)})\n" for p in (curves, paths["overview"]) if p)
    (out / "compare.md").write_text(
        f"# rlrt compare ({len(done)}/{len(plan)} runs finished)\n\n{start_note}{markdown_comparison(result)}\n"
        + "\n".join(dynamics_table(result["dynamics"])) + "\n"
        f"{images}\n## Training dynamics (rlrt report)\n\n" + paths["report"].read_text().split("\n", 2)[-1])
    return result


def plan_settings(args: CompareArguments, plan: list[PlannedRun]) -> dict[str, Any]:
    """``{"shared": flags every run has (seed and folder aside), "arms": {arm: its own flags}}`` for the report."""
    per_run = [{k: v for k, v in r.flags.items() if k not in ("seed", "output_dir")} for r in plan]
    shared = {k: v for k, v in per_run[0].items() if all(k in f and f[k] == v for f in per_run)}
    arms = {}
    for run, flags in zip(plan, per_run):
        arms.setdefault(run.arm, {k: v for k, v in flags.items() if k not in shared})
    return {"shared": shared, "arms": arms, "seeds": sorted({r.seed for r in plan})}


# ---- Entry points ---------------------------------------------------------------------------------------------


def run_compare(args: CompareArguments) -> int:
    """Plan, evaluate the start, train what is missing (subprocesses), write the report; the exit code."""
    out = Path(args.output_dir)
    refuse_foreign_folder(out, "rlrt compare")
    plan = plan_runs(args)
    arm_names = list(dict.fromkeys(r.arm for r in plan))
    if args.reference not in arm_names:
        raise ValueError(f"--reference {args.reference!r} is not an arm of this comparison"
                         f"{did_you_mean(args.reference, arm_names)}; choose one of {arm_names}.")
    own = {arm.name: arm.overrides for arm in arms_from(args.arms)}
    parsed = {r.name: parse_train_flags(r.flags, f"arm {r.arm!r} ({r.name})",  # all before any run
                                        {k: v for k, v in r.flags.items() if k not in own[r.arm]}) for r in plan}
    max_steps = {name: config.max_steps for name, (_, config) in parsed.items()}
    known = {"start"} | {r.name for r in plan} | {r.arm for r in plan} | {f"s{r.seed}" for r in plan}
    unknown = sorted(set(args.only or []) - known)
    if unknown:
        raise ValueError(f"--only {unknown}: not a run of this comparison; use 'start', an arm, a seed (s0) or one of "
                         f"{[r.name for r in plan]}.")
    anchor = next((r for r in plan if r.arm == args.reference), plan[0])
    drift = start_drift(start_path(out), parsed[anchor.name][0])
    if drift:
        raise ValueError(f"{start_path(out)} is the starting model's evaluation under other settings "
                         f"({'; '.join(drift)}): pass the flags it was made with, or move it away to evaluate the "
                         "starting model again.")
    short = None if args.report_only else short_runs_line([r for r in plan if selected(r, args.only)], max_steps)
    if short:
        raise ValueError(short)
    out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:  # the record of how the runs were launched; a report's own settings are in compare.json
        write_json(out / "compare_settings.json",
                   {"arguments": dict(vars(args)), "runs": {r.name: r.flags for r in plan}}, indent=2, default=str)
        if args.only is None or "start" in args.only:
            path = start_path(out)
            if path.is_file():
                print(f"starting model: evaluated ({path})", flush=True)
            else:
                train_args, config = parsed[anchor.name]
                final = train_args.eval_final_samples or train_args.eval_samples
                print(f"starting model: {args.strata_samples} + {final} samples per held-out problem", flush=True)
                evaluate_start(train_args, config, args.strata_samples + final, args.strata_samples,
                               args.start_seed, path)
        todo = [r for r in plan if selected(r, args.only)]
        for index, run in enumerate(todo, 1):
            tag = f"[{index}/{len(todo)}] {run.name}"
            if finished(run.run_dir, max_steps[run.name]):
                drift = settings_drift(run)
                note = f" (trained with other settings: {'; '.join(drift)})" if drift else ""
                print(f"{tag}: finished, skipped{note}", flush=True)
                continue
            moved = set_aside_unresumable(run.run_dir, out)
            if moved is not None:
                print(f"{tag}: stopped before its first checkpoint; its logs are kept in {moved}, starting over",
                      flush=True)
            print(f"{tag}: training ({max_steps[run.name]} steps)", flush=True)
            started = time.time()
            env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
            code = subprocess.run(train_command(run.flags, args.launcher), env=env).returncode
            if code != 0:
                print(f"rlrt compare: {run.name} stopped with exit code {code}; rerun the same command to resume",
                      file=sys.stderr)
                return code
            if not args.keep_checkpoints:
                for checkpoint in run.run_dir.glob("checkpoint-*"):
                    shutil.rmtree(checkpoint, ignore_errors=True)
            print(f"{tag}: done in {time.time() - started:.0f} s", flush=True)
    if args.only and not args.report_only:
        # Jobs of one comparison may run in parallel (one run per GPU job): one report at the end, not one per job.
        print(f"rlrt compare: done with {args.only}; write the report with --report_only once the runs are done.")
        return 0
    result = write_comparison(args, plan, max_steps)
    if result is None:
        return 1
    print((out / "compare.md").read_text())
    print(f"compare: {out / 'compare.md'}  {out / 'compare.json'}  curves: {out / 'pass_at_k.png'}")
    return 0


def compare(arms: list[str] | dict[str, Any], seeds: list[int] = (0,), output_dir: str = "compare_runs",
            train: dict[str, Any] | None = None, **options: Any) -> dict[str, Any] | None:
    """Python entry point of ``rlrt compare``: runs what is missing and returns the content of ``compare.json``
    (``None`` with ``only``, which writes no report). ``options`` are the other ``CompareArguments`` fields;
    raises ``RuntimeError`` when a run stops (call again to resume) and ``ValueError`` for bad arms or flags."""
    args = CompareArguments(arms=arms, seeds=list(seeds), train=dict(train or {}), output_dir=output_dir, **options)
    code = run_compare(args)
    if code != 0:
        raise RuntimeError(f"rlrt compare stopped with exit code {code}; call it again to resume.")
    if args.only and not args.report_only:
        return None
    path = Path(output_dir) / "compare.json"
    return json.loads(path.read_text()) if path.is_file() else None


COMMAND_ARGUMENTS = (CompareArguments,)
