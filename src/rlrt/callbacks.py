"""Trainer callbacks for run folders: metrics files, a live progress line, held-out evaluation."""

from __future__ import annotations

import json
import logging
import math
import sys
import warnings
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from .io import read_jsonl, write_csv

LIVE_FIELDS = (
    ("reward", "reward", "{:.3f}"),
    ("rewards/accuracy_reward/mean", "acc", "{:.3f}"),
    ("rlrt/shaped_frac", "shaped", "{:.2f}"),
    ("rlrt/weight_mean", "w", "{:.3f}"),
    ("rlrt/multiplier_min", "m_min", "{:.2f}"),
    ("rlrt/multiplier_max", "m_max", "{:.2f}"),
    ("rlrt/self_driven_frac", "self", "{:.2f}"),
    ("sdpo/distillation_loss", "distill", "{:.4f}"),
    ("self_distillation/reprompt_sample_fraction", "reprompt", "{:.2f}"),
    ("entropy", "H", "{:.2f}"),
    ("completions/mean_length", "len", "{:.0f}"),
    ("rlrt/teacher_seconds", "t_teacher", "{:.1f}s"),
    ("step_time", "t_step", "{:.1f}s"),
)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsFileCallback(TrainerCallback):
    """Appends every log entry to ``metrics.jsonl`` and rewrites ``metrics.csv`` (all keys seen so far)."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.jsonl = self.run_dir / "metrics.jsonl"
        self.csv = self.run_dir / "metrics.csv"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        entry = {"step": state.global_step, **{k: _clean(v) for k, v in logs.items()}}
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(entry) + "\n")
        write_csv(read_jsonl(self.jsonl), self.csv)


def live_line(state, logs: dict[str, Any]) -> str | None:
    """``step 3/8 | reward 0.312 | shaped 0.28 | w 1.075 | ...`` for a training log entry; None for others."""
    parts = [f"step {state.global_step}/{state.max_steps}"]
    for key, label, fmt in LIVE_FIELDS:
        value = logs.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{label} " + fmt.format(value))
    held_out = {k.removeprefix("heldout/"): v for k, v in logs.items()
                if k.startswith("heldout/") and isinstance(v, (int, float))}
    # The final evaluation also logs its avg@ under the periodic k (for one curve): show the one of most samples.
    averages = [k for k in held_out if k.startswith("avg@")]
    shown_average = max(averages, key=lambda k: int(k.split("@")[1]), default=None)
    for key, value in held_out.items():
        if not key.startswith("avg@") or key == shown_average:
            parts.append(f"{key} {value:.3f}")
    return " | ".join(parts) if len(parts) > 1 else None


class LiveLineCallback(ProgressCallback):
    """The usual progress bar, with one compact line per log instead of the raw dict.

    Everything printed while the bar is live goes *above* it, through tqdm's own ``external_write_mode`` (clear the
    bar, print, flush, redraw): the live lines, and also log records of ``rlrt``/``transformers``/``trl`` and Python
    warnings, which would otherwise be written into the middle of the bar's line.
    """

    LOGGERS = ("rlrt", "transformers", "trl")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._redirect = None
        self._showwarning = None

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        if state.is_world_process_zero and self._redirect is None:
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._redirect = logging_redirect_tqdm(loggers=[logging.getLogger(n) for n in self.LOGGERS])
            self._redirect.__enter__()
            self._showwarning = warnings.showwarning
            warnings.showwarning = _warning_above_bar

    def on_train_end(self, args, state, control, **kwargs):
        super().on_train_end(args, state, control, **kwargs)
        self.restore()

    def restore(self):
        """Undo the redirection of log records and warnings (idempotent)."""
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            warnings.showwarning = self._showwarning
            self._redirect = self._showwarning = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            line = live_line(state, logs)
            if line:
                print_above_bar(line)


def print_above_bar(text: str, file=None) -> None:
    """Print ``text`` above any live tqdm bar (cleared first, redrawn after) and flush it before the redraw, so a
    block-buffered stdout cannot land the text on the bar's line."""
    from tqdm.auto import tqdm

    file = file or sys.stdout
    with tqdm.external_write_mode(file=file):
        print(text, file=file, flush=True)


def _warning_above_bar(message, category, filename, lineno, file=None, line=None):
    print_above_bar(warnings.formatwarning(message, category, filename, lineno, line).rstrip("\n"),
                    file=file or sys.stderr)


class LinePrinterCallback(TrainerCallback):
    """Without a progress bar (``disable_tqdm``): the same compact line, printed."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            line = live_line(state, logs)
            if line:
                print(line, flush=True)


class HeldOutEvalCallback(TrainerCallback):
    """Held-out avg@k / pass@k before training (unless ``evaluate_start`` is off), every ``every`` optimizer steps
    and at the end.

    Results go to ``heldout.jsonl`` in the run folder and into the trainer's logged metrics as ``heldout/avg@k``
    and ``heldout/pass@k``. Each record also holds ``correct``: the number of correct samples per problem (in the
    held-out set's order; ``None`` where a gold answer cannot be parsed), out of ``samples``. The final evaluation
    draws ``final_samples`` samples per problem (default ``num_samples``); when that differs, its record also
    carries ``avg@<num_samples>``, the same per-sample accuracy estimated from all its samples, so the avg@k curve
    has one key throughout.
    """

    def __init__(self, trainer, dataset, num_samples: int, sampling, every: int, run_dir: str | Path,
                 final_samples: int | None = None, evaluate_start: bool = True, reward_config=None):
        self.trainer = trainer
        self.reward_config = reward_config  # how answers are graded (MathRewardConfig; None: the default)
        self.dataset = dataset
        self.num_samples = num_samples
        self.final_samples = final_samples or num_samples
        self.sampling = sampling
        self.every = every
        self.evaluate_start = evaluate_start
        self.path = Path(run_dir) / "heldout.jsonl"
        self.done_steps: set[int] = set()

    def _evaluate(self, state, log_to_trainer: bool, num_samples: int | None = None) -> None:
        from .evaluation.evaluate import evaluate_model
        from .evaluation.metrics import correct_counts

        num_samples = num_samples or self.num_samples
        step = state.global_step
        if step in self.done_steps:
            return
        self.done_steps.add(step)
        trainer = self.trainer
        accelerator = trainer.accelerator
        if accelerator.is_main_process:
            import torch

            model = accelerator.unwrap_model(trainer.model)
            was_training = model.training
            model.eval()
            # Evaluation seeds its own sampling: fork the RNG so that training's random stream, and so exact
            # resume, is the same with or without held-out evaluation.
            try:
                with torch.random.fork_rng():
                    result = evaluate_model(model, trainer.processing_class, self.dataset, num_samples,
                                            self.sampling, show_progress=False, description=f"held-out @ step {step}",
                                            reward_config=self.reward_config)
            finally:
                model.train(was_training)
            record = dict(result["summary"])
            if num_samples != self.num_samples and f"avg@{num_samples}" in record:
                record[f"avg@{self.num_samples}"] = record[f"avg@{num_samples}"]
            summary = {k: v for k, v in record.items() if "@" in k}
            record["correct"] = correct_counts([p["correct"] for p in result["problems"]])
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": step, **record}) + "\n")
            if log_to_trainer:
                for key, value in summary.items():
                    trainer.log_metric(f"heldout/{key}", value)
        accelerator.wait_for_everyone()

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0 and self.evaluate_start:
            self._evaluate(state, log_to_trainer=False)

    def on_step_end(self, args, state, control, **kwargs):
        last = state.global_step >= state.max_steps
        if last:
            self._evaluate(state, log_to_trainer=True, num_samples=self.final_samples)
        elif self.every and state.global_step % self.every == 0:
            self._evaluate(state, log_to_trainer=True)
