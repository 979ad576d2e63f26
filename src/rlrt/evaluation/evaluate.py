"""``rlrt eval``: sample k completions per problem, verify them, report avg@k and pass@k (JSON + Markdown)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..data.registry import parse_dataset_options
from ..data.tasks import DEFAULT_EVAL_DATASET
from ..io import differences, write_json
from ..models import DEFAULT_MODEL
from ..rewards.grading import grade_batch, grading_columns
from ..rewards.math import MathRewardConfig, MathVerifier
from .metrics import summarize
from .sampling import SamplingConfig, sample_completions
from .strata import (
    DEFAULT_STRATA_EDGES,
    check_edges,
    check_same_problems,
    start_counts,
    start_result,
    strata_markdown,
    strata_summary,
)


def score_samples(completions: Sequence[Sequence[str]], golds: Sequence[Any], verifier: MathVerifier,
                  reward_config: MathRewardConfig | None = None,
                  columns: dict[str, Sequence] | None = None) -> list[list[float | None]]:
    """``[problem][sample]`` 1.0/0.0 (``None`` where the gold answer cannot be parsed), graded by
    ``rlrt.rewards.grade_batch`` as the accuracy reward grades; ``columns`` are the problems' other grading columns
    (``rlrt.rewards.grading_columns``: a reasoning-gym task's rows are graded by its own scorer)."""
    columns = columns or {}
    out = []
    for i, (samples, gold) in enumerate(zip(completions, golds, strict=True)):
        row_columns = {name: [values[i]] * len(samples) for name, values in columns.items()}
        out.append(grade_batch(samples, [gold] * len(samples), reward_config, verifier, **row_columns))
    return out


def evaluate_model(model, tokenizer, dataset, num_samples: int, sampling: SamplingConfig,
                   verifier: MathVerifier | None = None, show_progress: bool = True, description: str = "eval",
                   reward_config: MathRewardConfig | None = None) -> dict:
    """avg@k / pass@k of ``model`` on ``dataset`` (columns ``prompt`` and ``answer``), plus per-problem rows; answers
    graded as the accuracy reward with ``reward_config`` grades them."""
    verifier = verifier or MathVerifier()
    total = len(dataset) * num_samples
    started = time.perf_counter()
    with tqdm(total=total, desc=description, unit="seq", disable=not show_progress) as bar:
        completions = sample_completions(model, tokenizer, dataset["prompt"], num_samples, sampling,
                                         progress=bar.update)
    scores = score_samples(completions, dataset["answer"], verifier, reward_config, grading_columns(dataset))
    summary = summarize(scores)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    problems = [
        {"answer": a, "correct": s, "completions": c}
        for a, s, c in zip(dataset["answer"], scores, completions, strict=True)
    ]
    return {"summary": summary, "problems": problems}


def markdown_table(results: list[dict[str, Any]]) -> str:
    """One row per (model, dataset): every avg@/pass@ column present in any result."""
    metric_names = sorted({k for r in results for k in r["summary"] if k.startswith(("avg@", "pass@"))},
                          key=lambda k: (k.split("@")[0] != "avg", int(k.split("@")[1])))
    header = "| model | dataset | problems | " + " | ".join(metric_names) + " |"
    lines = [header, "|" + "---|" * (3 + len(metric_names))]
    for r in results:
        s = r["summary"]
        cells = [f"{100 * s[m]:.1f}" if m in s else "" for m in metric_names]
        lines.append(f"| {r['model']} | {r['dataset']} | {s.get('problems', 0)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(results: list[dict[str, Any]], sampling: SamplingConfig, output_dir: str | Path,
                  stopped_by: str | None = None, settings: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """``results.json`` (everything, per-problem samples included) and ``results.md`` (the table); ``stopped_by``
    (a signal name) marks an evaluation that was interrupted and holds only the pairs that finished; ``settings``
    (``EvalArguments.settings()``) lets a rerun skip the pairs already finished with the same settings."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = output_dir / "results.json", output_dir / "results.md"
    payload = {"sampling": sampling.to_dict(), **({"settings": settings} if settings else {}), "results": results}
    if stopped_by:
        payload["stopped_by"] = stopped_by
    write_json(json_path, payload, indent=2)
    other = ", ".join(f"{k}={v}" for k, v in (settings or {}).items() if v is not None)
    other = f"Settings: {other}\n\n" if other else ""
    settings = ", ".join(f"{k}={v}" for k, v in sampling.to_dict().items())
    note = f"Stopped by {stopped_by}: only the checkpoint x dataset pairs that finished.\n\n" if stopped_by else ""
    strata = strata_markdown(results)
    md_path.write_text(f"# Evaluation\n\nSampling: {settings}\n\n{other}{note}Scores in %.\n\n"
                       + markdown_table(results)
                       + (f"\n## Difficulty strata\n\n{strata}" if strata else ""))
    return json_path, md_path


class EvaluationInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM during ``evaluate_checkpoints``; the finished pairs were written to ``json_path``/``md_path``."""

    def __init__(self, signal_name: str, finished: int, json_path: Path, md_path: Path):
        super().__init__(signal_name)
        self.signal_name, self.finished, self.json_path, self.md_path = signal_name, finished, json_path, md_path

    def __str__(self) -> str:
        return (f"stopped by {self.signal_name}; wrote the {self.finished} finished checkpoint x dataset result(s) to "
                f"{self.json_path}. Run the same command again for the rest (the finished ones are skipped).")


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises ``KeyboardInterrupt("SIGTERM")`` inside the block (main thread only), as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_SAMPLING_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SamplingConfig)}


@dataclass
class EvalArguments:
    """``rlrt eval`` flags; sampling defaults are ``SamplingConfig``'s (batch size aside: 64 sequences at once)."""

    model: list[str] = field(default_factory=lambda: [DEFAULT_MODEL], metadata={"help": "One or more checkpoints."})
    dataset: list[str] = field(
        default_factory=lambda: [DEFAULT_EVAL_DATASET], metadata={"help": "One or more datasets."}
    )
    limit: int | None = field(default=None, metadata={"help": "At most this many problems per dataset."})
    dataset_options: str | None = field(
        default=None, metadata={"help": "JSON options for every dataset, as `rlrt train --dataset_options`."}
    )
    dataset_seed: int = field(
        default=0,
        metadata={"help": "Seed that draws a generated dataset (rg: tasks; built-in held-out splits are fixed): the "
                  "run's --eval_dataset_seed (rlrt train's default is its --seed; rlrt compare uses 0 unless its "
                  "shared train flags set eval_dataset_seed) to evaluate on the problems it was evaluated on."},
    )
    num_samples: int = field(default=8, metadata={"help": "Samples per problem (k of avg@k, n of pass@k)."})
    max_new_tokens: int = field(default=_SAMPLING_DEFAULTS["max_new_tokens"],
                                metadata={"help": "Completion length bound (new tokens)."})
    temperature: float = field(default=_SAMPLING_DEFAULTS["temperature"],
                               metadata={"help": "Sampling temperature; 0 is greedy."})
    top_p: float = field(default=_SAMPLING_DEFAULTS["top_p"], metadata={"help": "Nucleus sampling mass in (0, 1]."})
    top_k: int = field(default=_SAMPLING_DEFAULTS["top_k"], metadata={"help": "Top-k filtering; 0 disables it."})
    batch_size: int = field(default=64, metadata={"help": "Sequences generated together."})
    seed: int = field(default=_SAMPLING_DEFAULTS["seed"], metadata={"help": "Torch seed set before sampling."})
    bf16: bool | None = field(default=None, metadata={"help": "bf16 autocast; default: where supported."})
    output_dir: str = field(default="eval_results", metadata={"help": "Where results.json and results.md go."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow a checkpoint's own model code."})
    reward_options: str | None = field(
        default=None, metadata={"help": "JSON MathRewardConfig fields for grading, as `rlrt train --reward_options`."}
    )
    strata_from: str | None = field(
        default=None,
        metadata={"help": "The starting model's results.json (of rlrt eval, or rlrt compare's start/results.json) "
                  "on the same dataset: report avg@k and the pass@k curve per difficulty stratum of its per-problem "
                  "accuracy. --limit N below its problem count takes its first N problems. Give the --strata_edges "
                  "the comparison used (e.g. --strata_edges 0.1 for experiments/where-rlrt-helps.yaml)."},
    )
    strata_model: str | None = field(
        default=None,
        metadata={"help": "With --strata-from: the starting model's name in that file, when it holds several models "
                  "on the dataset."},
    )
    strata_edges: list[float] = field(
        default_factory=lambda: list(DEFAULT_STRATA_EDGES),
        metadata={"help": "Strata edges after 'never solved' (0.6: never, <60%%, >=60%%); with --strata-from, "
                  "the edges of the comparison it came from (rlrt compare's strata_edges)."},
    )

    def __post_init__(self):
        for name, low in {"limit": 1, "num_samples": 1}.items():
            value = getattr(self, name)
            if value is not None and value < low:
                raise ValueError(f"--{name} must be >= {low}; got {value}.")
        self.sampling()  # checks the sampling flags now, before any model loads
        parse_dataset_options(self.dataset_options, {"seed": "--dataset_seed", "limit": "--limit",
                                                     "size": "--limit (the problems evaluated)"})
        if self.strata_model is not None and not self.strata_from:
            raise ValueError("--strata_model names the starting model inside a --strata-from file: give --strata-from "
                             "too, or drop --strata_model.")
        self.reward_config = MathRewardConfig.from_options(self.reward_options)

    def settings(self) -> dict[str, Any]:
        """What, besides the sampling settings, decides a checkpoint x dataset result: results already in
        ``output_dir``'s results.json are kept (and a finished pair reused) only when these and the sampling settings
        are the same. Strata are not among them: they are recomputed for the pairs asked."""
        return {"num_samples": self.num_samples, "limit": self.limit, "dataset_options": self.dataset_options,
                "reward_options": self.reward_options, "dataset_seed": self.dataset_seed}

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                              top_k=self.top_k, batch_size=self.batch_size, seed=self.seed, bf16=self.bf16)


def evaluate_checkpoints(args: EvalArguments) -> tuple[list[dict[str, Any]], Path, Path]:
    """Every model of ``args.model`` on every dataset of ``args.dataset``; ``(results, json_path, md_path)``."""
    from ..data.registry import load_task, parse_dataset_options, split_spec
    from ..models import load_model, load_tokenizer, resolve_model

    sampling = args.sampling()
    start_strata = read_start_strata(args) if args.strata_from else None
    datasets, options = {}, parse_dataset_options(args.dataset_options)
    for spec in args.dataset:
        name, split = split_spec(spec)
        start_size = len(start_strata[spec][2]) if start_strata is not None else None
        if start_size is not None and args.limit is not None and args.limit < start_size:
            # The start's problems, then their first --limit: the same rows even where a generator's rows depend on
            # how many are drawn (reasoning-gym's acre does), not just the rows a smaller --limit would draw.
            datasets[spec] = load_task(name, split=split, limit=start_size, seed=args.dataset_seed,
                                       **options).select(range(args.limit))
        else:
            datasets[spec] = load_task(name, split=split, limit=args.limit, seed=args.dataset_seed, **options)
        if start_strata is not None:  # before any model loads or samples, not after
            check_same_problems(start_strata[spec][2], datasets[spec]["answer"], spec)
    verifier = MathVerifier()
    settings = args.settings()
    kept = previous_results(args.output_dir, sampling, settings)  # refuses other settings before any model loads
    wanted = {(m, d) for m in args.model for d in datasets}
    others = [r for r in kept if (r.get("model"), r.get("dataset")) not in wanted]
    results = [r for r in kept if (r.get("model"), r.get("dataset")) in wanted]
    for entry in results:
        print(f"rlrt eval: {entry['model']} on {entry['dataset']} already in {args.output_dir}/results.json with "
              "the same settings, skipped", file=sys.stderr)
        if start_strata is not None:
            entry["strata"] = _strata_entry(entry["problems"], start_strata[entry["dataset"]], args)
    done = {(r["model"], r["dataset"]) for r in results}
    try:
        with _sigterm_as_interrupt():
            for model_name in args.model:
                if all((model_name, spec) in done for spec in datasets):
                    continue
                path = resolve_model(model_name)
                model = load_model(path, args.trust_remote_code)
                tokenizer = load_tokenizer(path, args.trust_remote_code)
                for spec, dataset in datasets.items():
                    if (model_name, spec) in done:
                        continue
                    result = evaluate_model(model, tokenizer, dataset, args.num_samples, sampling, verifier,
                                            description=f"{model_name} on {spec}", reward_config=args.reward_config)
                    entry = {"model": model_name, "dataset": spec, "dataset_seed": args.dataset_seed, **result}
                    if start_strata is not None:
                        entry["strata"] = _strata_entry(result["problems"], start_strata[spec], args)
                    results.append(entry)
    except KeyboardInterrupt as stop:
        signal_name = "SIGTERM" if str(stop) == "SIGTERM" else "SIGINT"
        json_path, md_path = write_results(others + results, sampling, args.output_dir, signal_name, settings)
        raise EvaluationInterrupted(signal_name, len(results), json_path, md_path) from None
    order = {(m, d): i for i, (m, d) in enumerate((m, d) for m in args.model for d in datasets)}
    results.sort(key=lambda r: order[(r["model"], r["dataset"])])
    json_path, md_path = write_results(others + results, sampling, args.output_dir, settings=settings)
    return results, json_path, md_path


def _strata_entry(problems: list[dict[str, Any]], start: tuple, args: EvalArguments) -> dict[str, Any]:
    """``strata_summary`` of one result, with where its strata came from (``--strata-from``, ``--strata_model``)."""
    table = strata_summary(problems, *start, args.strata_edges)
    return {**table, "strata_from": str(args.strata_from),
            **({"strata_model": args.strata_model} if args.strata_model else {})}


def previous_results(output_dir: str | Path, sampling: SamplingConfig,
                     settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The results already in ``output_dir/results.json`` (an earlier, perhaps interrupted, ``rlrt eval``), which
    this evaluation keeps: a pair asked again is skipped, the others stay in the file beside the new ones. ``[]``
    when there is no such file.

    Raises ``ValueError`` (one line, nothing overwritten) when the file was written with other sampling settings
    or ``settings`` (``EvalArguments.settings()``: their results would not be comparable in one file) or cannot be
    read, naming what differs and saying to choose another ``--output_dir`` or move the file away."""
    path = Path(output_dir) / "results.json"
    if not path.is_file():
        return []
    fix = f"choose another --output_dir, or move {path} away (nothing there is overwritten)."
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        payload = None
    entries = payload.get("results", []) if isinstance(payload, dict) else None
    if not isinstance(entries, list) or not isinstance(payload.get("sampling"), dict) or not payload["sampling"] \
            or not isinstance(payload.get("settings") or {}, dict) \
            or any(not isinstance(r, dict) or any(k not in r for k in RESULT_KEYS) for r in entries):
        raise ValueError(f"{path} is not a results.json of rlrt eval: {fix}")
    if payload.get("settings") is None:
        raise ValueError(f"{path} records no evaluation settings (an older rlrt eval, or rlrt compare's start "
                         f"evaluation), so its results cannot be kept beside new ones: {fix}")
    differ = differences(_comparable({**payload["sampling"], **payload["settings"]}),
                         _comparable({**sampling.to_dict(), **settings}))
    if differ:
        raise ValueError(f"{path} holds an evaluation with other settings ({'; '.join(differ)}): {fix}")
    return entries


RESULT_KEYS = ("model", "dataset", "summary", "problems")  # what every result of results.json holds


def _comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as ``previous_results`` compares them: JSON option texts parsed (other spacing is the same
    setting), ``dataset_seed`` 0 where a file written before the flag existed records none."""
    out = {"dataset_seed": 0, **settings}
    for key in ("dataset_options", "reward_options"):
        if isinstance(out.get(key), str):
            with contextlib.suppress(ValueError):
                out[key] = json.loads(out[key])
    return out


def read_start_strata(args: EvalArguments) -> dict[str, tuple]:
    """Per dataset spec of ``args.dataset``, the starting model's ``(correct counts, samples, answers)`` from
    ``args.strata_from`` (``start_result`` chooses the result, ``args.strata_model`` among several models); read and
    checked before any model loads. Raises ``FileNotFoundError``/``ValueError`` with what to change, also when the
    start drew a generated (``rg:``) dataset with another ``dataset_seed``."""
    check_edges(args.strata_edges)
    path = Path(args.strata_from)
    if not path.is_file():
        raise FileNotFoundError(f"--strata-from {path} does not exist: give the starting model's results.json from "
                                "rlrt eval (or rlrt compare's start/results.json).")
    give = "give the starting model's results.json from rlrt eval (or rlrt compare's start/results.json)."
    try:
        payload = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"--strata-from {path} is not valid JSON ({getattr(err, 'msg', err)}): {give}") from None
    if not isinstance(payload, dict):
        raise ValueError(f"--strata-from {path} is not a results.json (a JSON object with its results): {give}")
    out = {}
    try:
        for spec in args.dataset:
            chosen = start_result(payload, spec, args.strata_model)
            seed = chosen.get("dataset_seed")
            if spec.startswith("rg:") and seed is not None and seed != args.dataset_seed:
                raise ValueError(f"the --strata-from evaluation drew {spec} with dataset seed {seed} and this one "
                                 f"with {args.dataset_seed}: pass --dataset_seed {seed} (the same problems).")
            out[spec] = start_counts(chosen, payload.get("strata_samples"))
    except (KeyError, TypeError, AttributeError) as err:  # a results.json of another layout
        raise ValueError(f"--strata-from {path} is not a results.json of rlrt eval or rlrt compare (unexpected "
                         f"layout: {err!r}): {give}") from None
    note = strata_sampling_note(payload.get("sampling"), args.sampling().to_dict())
    if note:
        print(f"rlrt eval: note: {note}", file=sys.stderr)
    return out


# The sampling settings that change what a problem's accuracy means (batch size, seed and precision do not).
STRATA_SAMPLING_KEYS = ("max_new_tokens", "temperature", "top_p", "top_k")


def strata_sampling_note(theirs: dict[str, Any] | None, mine: dict[str, Any]) -> str | None:
    """A one-line note when the starting model's evaluation (``--strata-from``'s ``"sampling"``) drew its samples
    under other ``STRATA_SAMPLING_KEYS`` than this evaluation: strata and start-relative gains then mix in the
    settings' own effect (a longer length cap alone raises accuracy). ``None`` when they agree or are unrecorded."""
    if not isinstance(theirs, dict):
        return None
    differ = differences({k: theirs.get(k) for k in STRATA_SAMPLING_KEYS if k in theirs},
                         {k: mine.get(k) for k in STRATA_SAMPLING_KEYS if k in theirs})
    if not differ:
        return None
    return (f"the --strata-from evaluation sampled under other settings ({'; '.join(differ)}): its strata and the "
            "start's scores mix in the settings' own effect; pass the same flags to compare like with like.")


COMMAND_ARGUMENTS = (EvalArguments,)


def run_eval(args: EvalArguments) -> int:
    """``rlrt eval``: evaluate, write ``results.json``/``results.md``, print the table; the exit code."""
    try:
        results, json_path, md_path = evaluate_checkpoints(args)
    except EvaluationInterrupted as stop:
        print(f"\nrlrt eval: {stop}", file=sys.stderr)
        return 130 if stop.signal_name == "SIGINT" else 143
    print(markdown_table(results))
    if args.strata_from:
        print(strata_markdown(results))
    print(f"results: {json_path}  {md_path}")
    return 0
