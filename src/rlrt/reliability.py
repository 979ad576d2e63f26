"""Guards that keep a run alive and its checkpoints sound: reward errors, non-finite steps, stop signals.

Each piece is a small object the trainer installs; none of them changes what a healthy step computes.
``ReliableTrainerMixin`` installs them all, in the same way, on every rlrt trainer (``RLRTTrainer`` and the SDPO
baseline), and writes checkpoints that count as complete only once fully written.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import numbers
import os
import shutil
import signal
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

COMPLETE_MARKER = ".rlrt-complete"
RUN_STATE_FILE = "rlrt_state.pt"


# A run whose completions are mostly cut at the length cap learns little: a cut completion has no final answer and
# is graded wrong. Above this fraction (mean of TRL's ``completions/clipped_ratio``) train and compare say so.
CUT_COMPLETIONS_WARNING = 0.5


def cut_completions_warning(fraction: float | None, max_completion_length: int | None, where: str = "",
                            fix: str = "raise --max_completion_length") -> str | None:
    """One warning line when ``fraction`` (of completions cut at ``max_completion_length``, in [0, 1]) reaches
    ``CUT_COMPLETIONS_WARNING``, else ``None``; ``where`` names the run or steps the fraction is over, ``fix`` what
    to change in the caller's terms."""
    if fraction is None or not math.isfinite(fraction) or fraction < CUT_COMPLETIONS_WARNING:
        return None
    return (f"warning: {100 * fraction:.0f} % of the training completions{where} were cut at max_completion_length="
            f"{max_completion_length} (a cut completion has no final answer and is graded wrong): {fix}.")


# --------------------------------------------------------------------------------------------- rewards


class RewardFunctionError(RuntimeError):
    """A reward function failed in strict mode, or returned something unusable."""


def check_reward_signature(func: Callable, name: str) -> None:
    """Raises ``ValueError`` (one line, before any rollout) when ``func`` cannot take TRL's call: keywords
    ``prompts``, ``completions``, ``completion_ids``, ``trainer_state``, ``log_extra``, ``log_metric`` and the
    dataset's other columns, which only a ``**kwargs`` parameter accepts. Uninspectable callables pass."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return
    if isinstance(func, type):
        raise ValueError(f"Reward function {name!r} is a class: pass an instance of it ({name}(...)), whose __call__ "
                         "takes (prompts, completions, **kwargs).")
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        raise ValueError(
            f"Reward function {name!r} takes {signature}, but TRL calls it with the keywords prompts, completions, "
            f"completion_ids, trainer_state, log_extra, log_metric and the dataset's other columns: add **kwargs "
            f"(def {name}(prompts, completions, **kwargs))."
        )


def guard_reward_function(func: Callable, mode: str, errors: Counter, last_errors: dict | None = None) -> Callable:
    """Wrap a TRL reward function so one bad sample does not end the run.

    ``mode="skip"``: when the batch call raises, the function is called sample by sample and the samples that
    still raise score ``None`` (``errors[name]`` counts them, ``last_errors[name]`` keeps the last error as
    ``"Type: message"``). ``mode="raise"``: the error propagates, with the function's name. Either way, a
    wrong-length result, a non-numeric value or a non-finite one (inf, nan) is an error that names the function;
    ``None`` means "not applicable", as in TRL.
    """
    last_errors = {} if last_errors is None else last_errors
    name = getattr(func, "__name__", type(func).__name__)
    check_reward_signature(func, name)

    @functools.wraps(func)
    def guarded(prompts, completions, **kwargs):
        try:
            values = func(prompts=prompts, completions=completions, **kwargs)
        except Exception as err:  # noqa: BLE001 -- user code; classified below
            if mode == "raise":
                raise RewardFunctionError(
                    f"Reward function {name!r} raised {type(err).__name__}: {err}. Fix it, or set "
                    "reward_errors='skip' to score failing samples None and go on."
                ) from err
            values = _per_sample(func, name, prompts, completions, kwargs, errors, last_errors)
        if not isinstance(values, (list, tuple)) and hasattr(values, "tolist"):  # a numpy array or a 1-D tensor
            values = values.tolist()
        _check_values(name, values, len(completions))
        return values

    return guarded


def _per_sample(func, name, prompts, completions, kwargs, errors: Counter, last_errors: dict) -> list:
    per_row_keys = [k for k, v in kwargs.items() if isinstance(v, list) and len(v) == len(completions)]
    values, failed = [], []
    for i in range(len(completions)):
        row_kwargs = {k: ([v[i]] if k in per_row_keys else v) for k, v in kwargs.items()}
        try:
            values.extend(func(prompts=[prompts[i]], completions=[completions[i]], **row_kwargs))
        except Exception as err:  # noqa: BLE001
            errors[name] += 1
            last_errors[name] = f"{type(err).__name__}: {err}"
            failed.append((i, last_errors[name]))
            values.append(None)
    if failed:  # one line per batch, not one per sample
        logger.warning("Reward function %r failed on %d of %d samples (first on sample %d: %s); scoring them None.",
                       name, len(failed), len(completions), *failed[0])
    return values


TRL_ALL_NONE_WARNING = "All reward functions returned None"


class _ReportedNoneFilter(logging.Filter):
    """Drops TRL's "All reward functions returned None" warning (which prints a whole dataset row) in a step where
    the guard has reported reward-function errors in one line (TRL names one row only, so in such a step its
    warning is dropped even if that row's Nones were abstentions; in steps without errors it always shows)."""

    def __init__(self, trainer):
        super().__init__()
        import weakref

        self.trainer = weakref.ref(trainer)

    def filter(self, record: logging.LogRecord) -> bool:
        trainer = self.trainer()
        if trainer is None or TRL_ALL_NONE_WARNING not in str(record.msg):
            return True
        return not any(count > trainer._reward_errors_logged[name] for name, count in trainer.reward_errors.items())


def install_reported_none_filter(trainer, logger_name: str = "trl.trainer.grpo_trainer") -> None:
    """Add ``_ReportedNoneFilter`` for ``trainer`` to TRL's logger (filters of trainers gone are removed)."""
    target = logging.getLogger(logger_name)
    for old in [f for f in target.filters if isinstance(f, _ReportedNoneFilter) and f.trainer() is None]:
        target.removeFilter(old)
    target.addFilter(_ReportedNoneFilter(trainer))


def _check_values(name: str, values, expected: int) -> None:
    if not isinstance(values, (list, tuple)):
        raise RewardFunctionError(
            f"Reward function {name!r} returned {type(values).__name__}; it must return a list of floats (or None), "
            "one per completion."
        )
    if len(values) != expected:
        raise RewardFunctionError(
            f"Reward function {name!r} returned {len(values)} values for {expected} completions; return one per "
            "completion."
        )
    for index, value in enumerate(values):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise RewardFunctionError(
                f"Reward function {name!r} returned a {type(value).__name__} ({value!r}); rewards must be floats or "
                "None."
            )
        if value is not None and not math.isfinite(float(value)):
            raise RewardFunctionError(
                f"Reward function {name!r} returned {value} for sample {index}; rewards must be finite (a non-finite "
                "reward zeroes its group's advantages). Return None where the reward does not apply."
            )


class BrokenRewardWatch:
    """Stops a run whose reward function fails on every sample of ``limit`` consecutive rollout batches.

    ``reward_errors="skip"`` is for the odd failing sample; a function that never succeeds (a missing column, a
    typo) is broken, and training on its ``None`` rewards would only waste the run. ``limit=0`` disables.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.streaks: Counter[str] = Counter()
        self.batches: Counter[str] = Counter()  # rollout batches seen, and those with at least one value, by function
        self.batches_with_a_value: Counter[str] = Counter()
        self.last_errors: dict[str, str | None] = {}

    def update(self, name: str, failed: int, samples: int, last_error: str | None) -> None:
        """Record one rollout batch of ``samples`` completions (all processes) of which ``failed`` raised."""
        self.batches[name] += 1
        self.batches_with_a_value[name] += int(failed < samples)
        self.last_errors[name] = last_error or self.last_errors.get(name)
        self.streaks[name] = self.streaks[name] + 1 if samples > 0 and failed >= samples else 0
        if self.limit and self.streaks[name] >= self.limit:
            raise RewardFunctionError(
                f"Reward function {name!r} failed on every sample of {self.streaks[name]} consecutive rollout batches "
                f"(last error: {last_error or 'unknown'}). It is broken, not flaky: fix it (dataset columns reach it "
                "as keyword arguments) or remove it. max_failed_reward_steps sets this limit (0: never stop)."
            )

    def check_run(self) -> None:
        """At the end of a run (shorter than ``limit`` batches, or resumed): raise ``RewardFunctionError`` naming a
        function that failed on every sample of every rollout batch this run saw. ``limit=0`` disables."""
        for name, batches in self.batches.items():
            if self.limit and batches and not self.batches_with_a_value[name]:
                raise RewardFunctionError(
                    f"Reward function {name!r} failed on every sample of the run ({batches} rollout batches; last "
                    f"error: {self.last_errors.get(name) or 'unknown'}); the run folder is written, but nothing was "
                    "learned from it. Fix it (dataset columns reach it as keyword arguments) or remove it."
                )


class NoCorrectWatch:
    """Warns once when ``limit`` consecutive rollout batches held no correct rollout; ``limit=0`` disables."""

    def __init__(self, limit: int):
        self.limit = limit
        self.streak = 0
        self.warned = False

    def update(self, any_correct: bool) -> None:
        self.streak = 0 if any_correct else self.streak + 1
        if self.limit and self.streak >= self.limit and not self.warned:
            self.warned = True
            logger.warning(
                "no rollout has been correct for %d consecutive rollout batches: GRPO learns nothing from such groups "
                "and RLRT shapes nothing. Try an easier task, more generations (num_generations) or a longer "
                "max_completion_length, and check that completions give the answer in the format the reward reads "
                "(e.g. \\boxed{}).", self.streak,
            )


# ---------------------------------------------------------------------------------------- non-finite steps


class NonFiniteStepError(RuntimeError):
    """Too many optimizer steps had a NaN/inf loss or gradient."""


class NonFiniteGuard(TrainerCallback):
    """Skips an optimizer step whose loss or gradients are not finite, and stops the run after ``limit`` of them.

    The skip sets every gradient to ``None`` right before ``optimizer.step()``; torch optimizers leave such
    parameters (and their moment estimates) untouched, so nothing non-finite reaches the weights.
    """

    def __init__(self, trainer, limit: int):
        self.trainer = trainer
        self.limit = limit
        self.skipped = 0
        self.loss_was_nonfinite = False

    def note_loss(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss.detach()).all():
            self.loss_was_nonfinite = True

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        model = self.trainer.model
        grads_finite = all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
        bad = torch.tensor(float(self.loss_was_nonfinite or not grads_finite), device=self.trainer.accelerator.device)
        bad = self.trainer.accelerator.reduce(bad, reduction="sum").item() > 0  # every rank skips together
        self.loss_was_nonfinite = False
        if not bad:
            return
        for param in model.parameters():
            param.grad = None
        self.skipped += 1
        self.trainer.log_metric("rlrt/nonfinite_steps", float(self.skipped))
        logger.warning("Step %d: non-finite loss or gradient; the update was skipped (%d so far, limit %d).",
                       state.global_step + 1, self.skipped, self.limit)
        if self.skipped > self.limit:
            raise NonFiniteStepError(
                f"{self.skipped} optimizer steps had a NaN/inf loss or gradient (limit max_nonfinite_steps="
                f"{self.limit}); no corrupt update was applied. Lower learning_rate, check the reward functions, "
                "or raise max_nonfinite_steps. The last checkpoint is intact."
            )


# ------------------------------------------------------------------------------------------------ signals


class GracefulStop(TrainerCallback):
    """SIGINT/SIGTERM: finish the current optimizer step, save a checkpoint, stop. A second signal stops at once.

    With several processes the decision is shared at every step end (a signal seen by any rank stops all of them
    at the same step), so no rank waits forever in a collective.
    """

    def __init__(self, accelerator=None):
        self.accelerator = accelerator
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    def _handler(self, signum, frame):
        if self.received is not None:  # second signal: give up on the graceful path
            self._restore()
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        logger.warning("%s received: finishing this step, then writing a checkpoint and stopping.", self.received)

    def _restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handler)

    def on_step_end(self, args, state, control, **kwargs):
        stop = self.received is not None
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            flag = torch.tensor(float(stop), device=self.accelerator.device)
            stop = self.accelerator.reduce(flag, reduction="sum").item() > 0
            if stop and self.received is None:
                self.received = "SIGTERM (another rank)"
        if stop:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        self._restore()


# -------------------------------------------------------------------------------------------- checkpoints


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """``checkpoint-N`` folders that finished writing (they carry the completion marker), by step."""
    run_dir = Path(run_dir)
    found = []
    for path in run_dir.glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-")
        if step.isdigit() and (path / COMPLETE_MARKER).is_file():
            found.append((int(step), path))
    return [p for _, p in sorted(found)]


def last_complete_checkpoint(run_dir: str | Path) -> Path | None:
    checkpoints = complete_checkpoints(run_dir)
    return checkpoints[-1] if checkpoints else None


def rotate_checkpoints(run_dir: str | Path, limit: int | None, protect: str | Path | None = None) -> list[Path]:
    """Keep the ``limit`` newest *complete* checkpoints (and ``protect``, the best one); delete older complete ones
    and unmarked leftovers older than the newest complete one. Run only after the new checkpoint's marker is
    written, so a crash never leaves a run without a checkpoint to resume from. Returns the deleted folders."""
    complete = complete_checkpoints(run_dir)
    if not limit or limit <= 0 or not complete:
        return []
    keep = set(complete[-limit:]) | ({Path(protect)} if protect else set())
    newest_step = int(complete[-1].name.removeprefix("checkpoint-"))
    deleted = []
    for path in sorted(Path(run_dir).glob("checkpoint-*")):
        step = path.name.removeprefix("checkpoint-")
        if path in keep or not step.isdigit() or not path.is_dir():
            continue
        if path in complete or int(step) < newest_step:
            shutil.rmtree(path, ignore_errors=True)
            deleted.append(path)
    return deleted


# ------------------------------------------------------------------------------------------ the trainer mixin


class ReliableTrainerMixin:
    """The guards above, for a TRL trainer; list it first: ``class T(ReliableTrainerMixin, GRPOTrainer)``.

    The subclass calls ``_guard_reward_funcs`` before the TRL constructor and ``_install_guards`` after it (both take
    the ``RLRTConfig``), says what "correct" means in ``_any_correct``, and adds its own state to checkpoints by
    extending ``_checkpoint_state`` / ``_restore_checkpoint_state``. It overrides
    five TRL/transformers methods: ``_calculate_rewards`` (per-step reward-error counts; the TRL trainer's signature
    ``(inputs, prompts, completions, completion_ids_list)``), ``compute_loss`` (notes a non-finite loss),
    ``_save_checkpoint`` and ``_load_optimizer_and_scheduler`` (the completion marker and the extra state),
    ``_issue_warnings_after_load`` (no "missing key" warning for tied weights on resume).
    """

    def _guard_reward_funcs(self, reward_funcs, config) -> list:
        """Wrap every plain reward function with ``guard_reward_function`` (``config.reward_errors``) and set up the
        broken-reward and no-correct-rollout watches."""
        self.reward_errors: Counter[str] = Counter()
        self._reward_errors_logged: Counter[str] = Counter()
        self.reward_last_errors: dict[str, str] = {}
        self.broken_reward_watch = BrokenRewardWatch(config.max_failed_reward_steps)
        self.no_correct_watch = NoCorrectWatch(config.no_correct_warning_steps)
        install_reported_none_filter(self)
        funcs = reward_funcs if isinstance(reward_funcs, list) else [reward_funcs]
        return [guard_reward_function(f, config.reward_errors, self.reward_errors, self.reward_last_errors)
                if _is_plain_callable(f) else f for f in funcs]

    def _install_guards(self, config) -> None:
        self.nonfinite_guard = NonFiniteGuard(self, config.max_nonfinite_steps)
        self.add_callback(self.nonfinite_guard)
        self.graceful_stop = GracefulStop(self.accelerator) if config.checkpoint_on_signal else None
        if self.graceful_stop is not None:
            self.add_callback(self.graceful_stop)

    def _any_correct(self, rewards_per_func: torch.Tensor) -> bool:
        """Whether a rollout of this batch (``rewards_per_func (N, F)``, gathered) counts as correct."""
        raise NotImplementedError

    def log_metric(self, name: str, value: float, mode: str = "train") -> None:
        """Append ``value`` to the metric ``name``; TRL averages and logs it with its own at the next log step.

        The one place the package writes into TRL's private ``GRPOTrainer._metrics`` (``mode -> name -> list``),
        checked by ``tests/test_trl_seam.py``.
        """
        self._metrics[mode][name].append(value)

    @property
    def interrupted_by(self) -> str | None:
        """The signal that stopped the last ``train()`` early, if any."""
        return self.graceful_stop.received if self.graceful_stop is not None else None

    @property
    def shards_parameters(self) -> bool:
        """ZeRO-3 or FSDP: every forward pass is a collective that all ranks must join."""
        zero3 = self.is_deepspeed_enabled and self.accelerator.state.deepspeed_plugin.zero_stage == 3
        return bool(zero3 or self.is_fsdp_enabled)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        # Errors of this step summed over all processes (a collective: every rank calls it every step).
        names = self.reward_func_names
        local = [self.reward_errors[n] - self._reward_errors_logged[n] for n in names] + [len(prompts)]
        total = self.accelerator.reduce(torch.tensor(local, dtype=torch.float32, device=self.accelerator.device), "sum")
        *errors, samples = total.tolist()
        for name, count in zip(names, errors):
            self.log_metric(f"rewards/{name}/errors", count, "train" if self.model.training else "eval")
            self._reward_errors_logged[name] = self.reward_errors[name]
            if self.model.training:
                self.broken_reward_watch.update(name, count, samples, self.reward_last_errors.get(name))
        if self.model.training:  # rewards_per_func is gathered: every rank sees the same value
            self.no_correct_watch.update(self._any_correct(rewards_per_func))
        return rewards_per_func

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        if self.model.training:
            self.nonfinite_guard.note_loss(loss)
        return loss

    def _checkpoint_state(self) -> dict:
        """What a checkpoint keeps besides TRL's own files (extended by subclasses)."""
        return {"nonfinite_steps": self.nonfinite_guard.skipped, "reward_errors": dict(self.reward_errors)}

    def _restore_checkpoint_state(self, state: dict) -> None:
        self.nonfinite_guard.skipped = state.get("nonfinite_steps", 0)
        self.reward_errors.update(state.get("reward_errors", {}))
        self._reward_errors_logged.update(state.get("reward_errors", {}))

    def _save_checkpoint(self, model, trial):
        """TRL's checkpoint plus ``_checkpoint_state()``; a marker file written last makes it count as complete."""
        from transformers.trainer import TRAINING_ARGS_NAME

        run_dir = self._get_output_dir(trial=trial)
        output_dir = os.path.join(run_dir, f"checkpoint-{self.state.global_step}")
        # HF rotates old checkpoints away before our marker exists; rotate ourselves once the new one is complete.
        limit, self.args.save_total_limit = self.args.save_total_limit, None
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = limit
        if self.args.should_save:
            args_file = os.path.join(output_dir, TRAINING_ARGS_NAME)
            if os.path.isfile(args_file):  # it was written with the limit switched off: record the real arguments
                torch.save(self.args, args_file)
            torch.save(self._checkpoint_state(), os.path.join(output_dir, RUN_STATE_FILE))
            with open(os.path.join(output_dir, COMPLETE_MARKER), "w") as f:
                f.write(f"{self.state.global_step}\n")
            rotate_checkpoints(run_dir, limit, protect=self.state.best_model_checkpoint)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        path = os.path.join(checkpoint, RUN_STATE_FILE) if checkpoint else None
        if path and os.path.isfile(path):
            self._restore_checkpoint_state(torch.load(path, map_location="cpu", weights_only=False))

    def _issue_warnings_after_load(self, load_result):
        """transformers' warnings after loading a checkpoint, less the tied weights a checkpoint stores once
        (``lm_head.weight`` of a model with tied embeddings is the loaded input embedding, not a missing weight)."""
        missing = really_missing_keys(self.model, load_result.missing_keys)
        super()._issue_warnings_after_load(load_result._replace(missing_keys=missing))


def really_missing_keys(model: torch.nn.Module, missing: list[str]) -> list[str]:
    """The keys of ``missing`` (from ``load_state_dict(strict=False)``) whose parameter was not loaded under another
    name: a parameter shared by several names (tied weights) is loaded if one of its names was."""
    names_of: dict[int, list[str]] = {}
    for name, tensor in list(model.named_parameters(remove_duplicate=False)) + list(
            model.named_buffers(remove_duplicate=False)):
        names_of.setdefault(id(tensor), []).append(name)
    alias = {name: names for names in names_of.values() for name in names}
    missing_set = set(missing)
    return [k for k in missing if all(other in missing_set for other in alias.get(k, [k]))]


def _is_plain_callable(func) -> bool:
    return callable(func) and not isinstance(func, torch.nn.Module) and not inspect.iscoroutinefunction(func)
