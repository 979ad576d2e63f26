"""``rlrt train``: train with RLRT or a baseline (``--shaping``); every GRPOConfig field is a flag.

The training job: model, data, rewards, trainer, run folder. A run folder holds ``config.json`` (everything used, and
under ``"code"`` the rlrt version, git commit and library versions that trained it: ``rlrt.provenance``),
``metrics.jsonl``/``metrics.csv`` (every log entry), ``heldout.jsonl`` (held-out avg@k/pass@k by step), ``final/``
(model and tokenizer) and ``summary.json`` / ``summary.md``. ``shaping="sdpo"`` trains with TRL's SDPOTrainer
(``rlrt.baselines.sdpo``) into the same folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import CPU_RUN_DEFAULTS, SDPO, RLRTConfig
from .data.registry import held_out_split_of, parse_dataset_options, split_spec
from .data.tasks import DEFAULT_EVAL_DATASET, DEFAULT_TASK
from .io import ensure_output_dir, finite_or_none, read_jsonl, refuse_foreign_folder, summary_steps, write_json
from .models import DEFAULT_MODEL
from .reliability import cut_completions_warning

DATASET_OPTION_FLAGS = {
    "seed": "--seed for the training order (rlrt compare: --seeds) or --eval_dataset_seed for a generated "
            "held-out set",
    "limit": "--dataset_limit (training problems) or --eval_limit (held-out problems)"}


@dataclass
class TrainArguments:
    """What to train on; every training hyper-parameter is an ``RLRTConfig`` field."""

    model: str = field(default=DEFAULT_MODEL, metadata={"help": f"Model path or hub id; {DEFAULT_MODEL!r} = embedded."})
    dataset: str = field(
        default=DEFAULT_TASK,
        metadata={"help": f"{DEFAULT_TASK!r} or 'chain' (built-in), 'rg:<reasoning-gym task>', a hub preset, or a "
                  ".jsonl/.parquet/.csv path; append ':train' or ':test' to a built-in, rg: or hub name for a split "
                  "(a local file is one split)."},
    )
    dataset_limit: int | None = field(default=None, metadata={"help": "Use at most this many training problems."})
    dataset_options: str | None = field(
        default=None,
        metadata={"help": "JSON options for the dataset: reasoning-gym parameters ({\"min_terms\": 2}), column "
                  "mapping of a local file ({\"question_column\": \"problem\"}), and the prompt format "
                  "(instruction, system_prompt, chat), the chain task's difficulty ({\"steps\": 3}); a held-out "
                  "set of the same dataset gets them too."},
    )
    eval_dataset: str | None = field(
        default="auto",
        metadata={"help": "Held-out set for avg@k/pass@k during training; 'none' disables. 'auto': the training "
                  f"dataset's test split (built-in and rg: tasks; {DEFAULT_EVAL_DATASET} for the default task), "
                  "else none (a local file or hub preset: name its held-out set here)."},
    )
    eval_limit: int = field(default=32, metadata={"help": "Held-out problems evaluated."})
    eval_samples: int = field(default=2, metadata={"help": "Samples per held-out problem (the k of avg@k)."})
    eval_every: int = field(default=0, metadata={"help": "Held-out evaluation every N steps (0: start and end)."})
    eval_final_samples: int | None = field(
        default=None,
        metadata={"help": "Samples per held-out problem at the final evaluation (default: eval_samples); pass@k is "
                  "reported up to this k there."},
    )
    eval_start: bool = field(
        default=True, metadata={"help": "Evaluate the starting model (step 0); `rlrt compare` does it once instead."}
    )
    eval_batch_size: int | None = field(
        default=None,
        metadata={"help": "Sequences generated together in held-out evaluation (default: the training batch size, "
                  "at least 8); 32-64 keep 2 CPU cores busy."},
    )
    eval_dataset_seed: int | None = field(
        default=None,
        metadata={"help": "Seed that draws a generated held-out set (rg: tasks; default: --seed). `rlrt compare` "
                  "fixes it for every run (0, or the value in its shared train flags) so that every seed is "
                  "evaluated on the same problems."},
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy"],
        metadata={"help": "Reward functions: 'accuracy' (math-verify; reasoning-gym's own scorer on rg: rows), "
                  "'format', 'reasoning_gym', or 'path/to/file.py:function' / 'module:function'."},
    )
    reward_options: str | None = field(
        default=None,
        metadata={"help": "JSON MathRewardConfig fields for the accuracy reward and held-out evaluation, e.g. "
                  "{\"answer_format\": \"boxed\"} (only \\boxed{} answers count) or {\"float_rounding\": 2}."},
    )
    resume: str = field(
        default="auto",
        metadata={"help": "'auto': continue from the last complete checkpoint in output_dir if there is one; "
                  "'never'; or a checkpoint folder."},
    )
    lora_r: int = field(default=0, metadata={"help": "LoRA rank; 0 trains all weights."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], metadata={"help": "LoRA target modules."}
    )

    def __post_init__(self):
        from .rewards.math import MathRewardConfig

        self.reward_config = MathRewardConfig.from_options(self.reward_options)
        # refused now (and by rlrt compare before any run), not at load
        parse_dataset_options(self.dataset_options, DATASET_OPTION_FLAGS)
        # Printed by run_training once the data and trainer have accepted the run (a refused run prints one line).
        self.heldout_note = None
        if self.eval_dataset == "auto":  # resolved here, so config.json records the held-out set actually used
            self.eval_dataset = held_out_split_of(self.dataset) or "none"
            if self.eval_dataset == "none":
                self.heldout_note = (
                    f"held-out evaluation is off: {self.dataset} has no known test split; pass --eval_dataset (a file "
                    "of held-out problems, or a hub preset's test split) to evaluate during training.")
        bounds = {"dataset_limit": 1, "eval_limit": 1, "eval_samples": 1, "eval_every": 0, "eval_final_samples": 1,
                  "eval_batch_size": 1, "lora_r": 0, "lora_alpha": 1}
        for name, low in bounds.items():
            value = getattr(self, name)
            if value is not None and value < low:
                hint = " (--eval_dataset none turns held-out evaluation off)" if name.startswith("eval_") else ""
                raise ValueError(f"--{name} must be >= {low}; got {value}{hint}.")


def heldout_dataset(train_args: TrainArguments, config: RLRTConfig):
    """The held-out set a run evaluates (``None`` when ``eval_dataset`` is off); ``rlrt compare`` loads the same.

    The same task as training gets the same ``dataset_options`` (its difficulty), less a reasoning-gym ``size``,
    which is the training set's only."""
    from .data.registry import load_task, parse_dataset_options

    if not train_args.eval_dataset or train_args.eval_dataset.lower() == "none":
        return None
    name, split = split_spec(train_args.eval_dataset)
    options = parse_dataset_options(train_args.dataset_options) if name == split_spec(train_args.dataset)[0] else {}
    seed = config.seed if train_args.eval_dataset_seed is None else train_args.eval_dataset_seed
    return load_task(name, split=split, limit=train_args.eval_limit, seed=seed,
                     **{k: v for k, v in options.items() if k != "size"})


def heldout_sampling(train_args: TrainArguments, config: RLRTConfig):
    """The sampling settings of held-out evaluation: the training rollouts' length, temperature and top-p, seeded
    with the run's seed."""
    from .evaluation.sampling import SamplingConfig

    batch_size = train_args.eval_batch_size or max(config.per_device_train_batch_size, 8)
    return SamplingConfig(max_new_tokens=config.max_completion_length, temperature=config.temperature,
                          top_p=config.top_p, batch_size=batch_size, seed=config.seed, bf16=config.bf16)


def load_reward_funcs(names: list[str], dataset: str | None = None, reward_config=None):
    """``rlrt.rewards.load_reward_funcs`` for the ``--dataset`` spec ``dataset`` (its split aside)."""
    from .rewards.loading import load_reward_funcs as load

    return load(names, split_spec(dataset)[0] if dataset else None, reward_config)


class TrainingInterrupted(RuntimeError):
    """``train()`` stopped on SIGINT/SIGTERM after writing a checkpoint."""

    def __init__(self, signal_name: str, checkpoint: Path | None):
        self.signal_name = signal_name
        self.checkpoint = checkpoint
        where = f"checkpoint {checkpoint}" if checkpoint else "no checkpoint"
        super().__init__(f"stopped by {signal_name}; wrote {where}. Run the same command again to resume.")


class RunAlreadyFinished(Exception):
    """The run folder's last checkpoint (or summary) already reaches ``max_steps``."""


def find_resume_checkpoint(train_args: TrainArguments, config: RLRTConfig,
                           record: dict[str, Any] | None = None) -> Path | None:
    """The checkpoint to continue from, per ``train_args.resume``.

    A run folder whose run finished (``summary.json``) and has no checkpoint to continue from to ``max_steps``:
    settings changed against its ``config.json`` (``record``, a ``config_record``) are refused by name first
    (``ValueError``); then ``RunAlreadyFinished`` when it reached ``max_steps``, else ``ValueError`` saying that no
    checkpoint was saved and how to train further."""
    from .reliability import COMPLETE_MARKER, last_complete_checkpoint

    run_dir = Path(config.output_dir)
    checkpoint = None
    if train_args.resume == "auto":
        checkpoint = last_complete_checkpoint(run_dir)
        finished_steps = summary_steps(run_dir)
        if finished_steps is not None and (checkpoint is None or finished_steps >= config.max_steps):
            first_record = run_dir / "config.json"
            first = json.loads(first_record.read_text()) if first_record.is_file() else None
            if first is not None and record is not None:
                resume_changes(first, record, run_dir)  # a changed shape of training is named, not "finished"
            if finished_steps >= config.max_steps:
                raise RunAlreadyFinished(
                    f"{run_dir} already finished at step {finished_steps} (max_steps={config.max_steps}): nothing "
                    "to train. Raise --max_steps to continue it, or choose another --output_dir."
                )
            save_strategy = (first or {}).get("rlrt", {}).get("save_strategy")
            why = f" (save_strategy={save_strategy!r})" if save_strategy else ""
            raise ValueError(
                f"{run_dir} finished at step {finished_steps} and no checkpoint was saved{why}, so it cannot continue "
                f"to max_steps={config.max_steps}: train further in a new --output_dir, or pass --save_strategy "
                "steps --save_steps N next time."
            )
    elif train_args.resume != "never":
        checkpoint = Path(train_args.resume)
        if not (checkpoint / COMPLETE_MARKER).is_file():
            raise FileNotFoundError(f"--resume {checkpoint} is not a complete rlrt checkpoint folder.")
    if checkpoint is None:
        if (run_dir / "metrics.jsonl").is_file():
            raise ValueError(
                f"{run_dir} already has the logs of a run but no complete checkpoint to resume from. Choose another "
                "--output_dir (or move that folder away); nothing there is overwritten."
            )
        return None
    step = json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
    if step >= config.max_steps:
        if record is not None and (run_dir / "config.json").is_file():
            resume_changes(json.loads((run_dir / "config.json").read_text()), record, run_dir)
        raise RunAlreadyFinished(
            f"{run_dir} already finished at step {step} (max_steps={config.max_steps}): nothing to train. Raise "
            "--max_steps to continue it, or choose another --output_dir."
        )
    return checkpoint


# Settings that may change when a run resumes: where and how often it logs, saves and evaluates, how long it runs,
# and the guards' limits. Anything else (batch shape, shaping, model, data, optimizer, seed...) changes the training
# the first steps had, and a resume that changes it is refused. Keys are "section.name" of the config record.
RESUME_SAFE = {
    "train.resume", "train.eval_every", "train.eval_batch_size", "train.eval_start", "train.eval_final_samples",
    "rlrt.output_dir", "rlrt.max_steps", "rlrt.num_train_epochs", "rlrt.report_to", "rlrt.disable_tqdm",
    "rlrt.run_name", "rlrt.resume_from_checkpoint", "rlrt.overwrite_output_dir", "rlrt.eval_steps",
    "rlrt.eval_strategy", "rlrt.per_device_eval_batch_size", "rlrt.max_nonfinite_steps", "rlrt.reward_errors",
    "rlrt.max_failed_reward_steps", "rlrt.no_correct_warning_steps", "rlrt.checkpoint_on_signal",
    "rlrt.log_completions", "rlrt.num_completions_to_print", "rlrt.skip_memory_metrics", "rlrt.debug",
}
RESUME_SAFE_PREFIXES = ("rlrt.logging_", "rlrt.log_", "rlrt.save_", "rlrt.hub_", "rlrt.push_to_hub", "rlrt.dataloader_",
                        "rlrt.ddp_", "rlrt.include_", "rlrt.wandb_", "rlrt.trackio_")


# Settings GRPOConfig derives from others: a change is named by the settings it follows from, when one of them changed.
DERIVED_FROM = {
    "generation_batch_size": ("per_device_train_batch_size", "gradient_accumulation_steps"),
    "steps_per_generation": ("gradient_accumulation_steps",),
}


def resume_changes(first: dict[str, Any], now: dict[str, Any], run_dir: Path) -> dict[str, list]:
    """Settings that differ between the run's first start (``first``, its ``config.json``) and this one (``now``,
    a ``config_record``): the safe ones as ``{"section.name": [first, now]}``; raises ``ValueError`` naming every
    other one and how to start a fresh run instead. A setting the first record lacks (an older rlrt) is not compared.
    """
    changed, refused = {}, []
    first, now = finite_or_none(first), finite_or_none(now)  # config.json is strict JSON: inf and nan read as null
    for section in ("train", "rlrt"):
        before, after = first.get(section, {}), now.get(section, {})
        for name in after:
            if name not in before or before[name] == after[name]:
                continue
            key = f"{section}.{name}"
            if key in RESUME_SAFE or key.startswith(RESUME_SAFE_PREFIXES):
                changed[key] = [before[name], after[name]]
            elif section == "rlrt" and any(before.get(s) != after.get(s) for s in DERIVED_FROM.get(name, ())):
                continue  # follows from a changed setting named on its own
            else:
                refused.append(f"{name}: {before[name]!r} -> {after[name]!r}")
    if refused:
        raise ValueError(
            f"{run_dir} was started with other settings, and resuming would mix two kinds of training in one run: "
            f"{'; '.join(refused)}. Drop those changes to continue the run (logging, saving, evaluation cadence and "
            "max_steps may change), or start a fresh run with another --output_dir."
        )
    return changed


def truncate_log(path: Path, last_step: int) -> None:
    """Drop log lines after ``last_step`` (they are produced again by the resumed run)."""
    rows = [r for r in read_jsonl(path) if r.get("step", 0) <= last_step]
    if path.is_file():
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def config_record(train_args: TrainArguments, config: RLRTConfig, trainer_config=None) -> dict[str, Any]:
    """Both argument sets as JSON-safe dicts (``"train"``, ``"rlrt"``), the config the TRL trainer actually gets when
    it is not ``config`` (the ``SDPOConfig`` of ``shaping="sdpo"``, under ``"sdpo"``), and the code that trains
    (``rlrt.provenance.code_record``, under ``"code"``: not a setting, so ``resume_changes`` does not compare it)."""
    from .provenance import code_record

    def safe(obj):
        return json.loads(json.dumps(dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj, default=str))

    record = {"train": safe(train_args), "rlrt": json.loads(config.to_json_string())}
    if trainer_config is not None:
        record["sdpo"] = json.loads(trainer_config.to_json_string())
    record["code"] = code_record()
    return record


def build_trainer(model, reward_funcs, args: RLRTConfig, train_dataset, **kwargs):
    """The trainer ``args.shaping`` names: ``RLRTTrainer`` (GRPO and its shapings) or, for ``"sdpo"``, TRL's
    ``SDPOTrainer`` with rlrt's guards (``rlrt.baselines.SDPOBaselineTrainer``). Arguments as ``GRPOTrainer``'s."""
    if args.shaping == SDPO:
        from .baselines.sdpo import SDPOBaselineTrainer as trainer_class
    else:
        from .trainer import RLRTTrainer as trainer_class
    return trainer_class(model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset, **kwargs)


def run_training(train_args: TrainArguments, config: RLRTConfig) -> Path:
    """Train, evaluate and write the run folder; returns its path."""
    from accelerate import PartialState
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from .callbacks import HeldOutEvalCallback, LinePrinterCallback, LiveLineCallback, MetricsFileCallback
    from .data.registry import load_task, parse_dataset_options
    from .models import load_tokenizer, resolve_model

    started = time.time()
    trainer_config = None
    if config.shaping == SDPO:  # SDPOConfig's own checks run now, before anything loads
        from .baselines.sdpo import to_sdpo_config

        trainer_config = to_sdpo_config(config)
    run_dir = ensure_output_dir(config.output_dir)  # before any work: a folder that cannot be written fails now
    refuse_foreign_folder(run_dir, "rlrt train")
    record = config_record(train_args, config, trainer_config)
    checkpoint = find_resume_checkpoint(train_args, config, record)
    if checkpoint is not None:  # refuse a changed shape of training before anything loads
        reference = run_dir / "config.json"
        reference = reference if reference.is_file() else checkpoint.parent / "config.json"
        first = json.loads(reference.read_text()) if reference.is_file() else None
        changed = resume_changes(first, record, run_dir) if first is not None else {}
    model_path = resolve_model(train_args.model)
    tokenizer = load_tokenizer(model_path, trust_remote_code=config.trust_remote_code)
    name, split = split_spec(train_args.dataset)
    options = parse_dataset_options(train_args.dataset_options)
    train_dataset = load_task(name, split=split, limit=train_args.dataset_limit, seed=config.seed, **options)
    reward_funcs = load_reward_funcs(train_args.reward_funcs, train_args.dataset, train_args.reward_config)
    for reward_func in reward_funcs:
        if callable(getattr(reward_func, "start", None)):
            reward_func.start()  # e.g. the math verifier's worker imports sympy while the model loads
    peft_config = None
    if train_args.lora_r > 0:
        from peft import LoraConfig

        peft_config = LoraConfig(r=train_args.lora_r, lora_alpha=train_args.lora_alpha,
                                 target_modules=train_args.lora_target_modules, task_type="CAUSAL_LM")

    trainer = build_trainer(model_path, reward_funcs, config, train_dataset, processing_class=tokenizer,
                            peft_config=peft_config)
    trainer.base_model_name = train_args.model  # the model card names it, not the folder it resolved to
    trainer.add_callback(MetricsFileCallback(run_dir))
    if config.disable_tqdm:
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(LinePrinterCallback)
    else:
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(live := LiveLineCallback())
    if trainer.shards_parameters and train_args.eval_dataset and train_args.eval_dataset.lower() != "none":
        print("held-out evaluation during training is off under ZeRO-3/FSDP (generation on one rank would wait "
              "on the others); evaluate checkpoints with `rlrt eval` instead.", flush=True)
    elif train_args.eval_dataset and train_args.eval_dataset.lower() != "none":
        trainer.add_callback(HeldOutEvalCallback(
            trainer, heldout_dataset(train_args, config), train_args.eval_samples, heldout_sampling(train_args, config),
            train_args.eval_every, run_dir, final_samples=train_args.eval_final_samples,
            evaluate_start=train_args.eval_start, reward_config=train_args.reward_config))
    # Written once everything that can refuse the run (trainer, reward functions, held-out set) has accepted it, so
    # a refused command leaves no run folder behind and a refused resume leaves its logs as they were.
    main_process = PartialState().is_main_process  # under `accelerate launch` every rank runs this function
    if train_args.heldout_note and main_process:
        print(train_args.heldout_note, flush=True)
    if checkpoint is not None:
        step = json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
        if main_process:
            print(f"resuming from {checkpoint} (step {step} of {config.max_steps})", flush=True)
            for log in ("metrics.jsonl", "heldout.jsonl"):
                truncate_log(run_dir / log, step)
            first = first if first is not None else record
            resume = {"step": step, "checkpoint": str(checkpoint), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      "changed": changed, "code": record["code"]}  # the code that trains from here on
            first["resumes"] = [*first.get("resumes", []), resume]
            write_json(run_dir / "config.json", first, indent=2)  # the first start's settings stay
    elif main_process:
        write_json(run_dir / "config.json", record, indent=2)
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        if not config.disable_tqdm:
            live.restore()  # log and warning printing back to normal, also when training raised
    if trainer.interrupted_by:
        from .reliability import last_complete_checkpoint

        raise TrainingInterrupted(trainer.interrupted_by, last_complete_checkpoint(run_dir))
    final_dir = run_dir / "final"
    if trainer.is_fsdp_enabled:
        # Checkpoints stay sharded (fast to write and to resume from); final/ must load with from_pretrained.
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(final_dir))
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(final_dir)
        write_summary(run_dir, trainer.state.log_history, time.time() - started, config)
    if getattr(trainer, "broken_reward_watch", None) is not None:
        trainer.broken_reward_watch.check_run()  # after everything is written: a run too short for the streak stop
    return run_dir


def cut_fraction(train_logs: list[dict[str, Any]]) -> float | None:
    """Mean over the logged training steps of TRL's ``completions/clipped_ratio`` (the fraction of a step's
    completions cut at ``max_completion_length``); ``None`` when no step logged it (SDPO logs it too)."""
    values = [e.get("completions/clipped_ratio") for e in train_logs]
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def write_summary(run_dir: Path, log_history: list[dict[str, Any]], seconds: float, config: RLRTConfig) -> dict:
    """``summary.json`` and ``summary.md``: first/last training reward, held-out before/after, timing, the mean
    fraction of completions cut at the length cap (``clipped_ratio``, with a warning from half on)."""
    train_logs = [e for e in log_history if "reward" in e]
    heldout = read_jsonl(run_dir / "heldout.jsonl")
    summary: dict[str, Any] = {
        "shaping": config.shaping,
        "steps": train_logs[-1]["step"] if train_logs else 0,
        "seconds": round(seconds, 1),
        "seconds_per_step": round(sum(e.get("step_time", 0.0) for e in train_logs) / max(len(train_logs), 1), 2),
        "reward_first": train_logs[0]["reward"] if train_logs else None,
        "reward_last": train_logs[-1]["reward"] if train_logs else None,
        "clipped_ratio": cut_fraction(train_logs),
        "heldout": heldout,
    }
    write_json(run_dir / "summary.json", summary, indent=2)
    lines = [f"# Run summary: {config.shaping}", "", f"- steps: {summary['steps']}",
             f"- wall time: {summary['seconds']} s ({summary['seconds_per_step']} s per step)",
             f"- training reward: first step {summary['reward_first']}, last step {summary['reward_last']}"]
    warning = cut_completions_warning(summary["clipped_ratio"], config.max_completion_length)
    if warning:
        lines.append(f"- {warning}")
        print(f"rlrt train: {warning}", file=sys.stderr)
    for entry in heldout:
        scores = ", ".join(f"{k} {100 * v:.1f}%" for k, v in entry.items() if "@" in k)
        lines.append(f"- held-out at step {entry['step']}: {scores}")
    (run_dir / "summary.md").write_text("\n".join(lines) + "\n")
    return summary


COMMAND_ARGUMENTS = (TrainArguments, RLRTConfig)
COMMAND_DEFAULTS = CPU_RUN_DEFAULTS


def run_train(train_args: TrainArguments, config: RLRTConfig) -> int:
    """``rlrt train``: train into a run folder and print where it is; the exit code (130/143 after a signal)."""
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging as transformers_logging

    if config.output_dir == "auto":
        config.output_dir = os.path.join("runs", f"{config.shaping}-{time.strftime('%Y%m%d-%H%M%S')}")
    # One progress bar on the terminal, the training one: transformers' own bars for loading and writing weights
    # (seconds each) are off while training runs; hub downloads keep theirs.
    bars_were_on, downloads_were_on = transformers_logging.is_progress_bar_enabled(), not are_progress_bars_disabled()
    transformers_logging.disable_progress_bar()
    if downloads_were_on:
        enable_progress_bars()
    try:
        run_dir = run_training(train_args, config)
    except RunAlreadyFinished as done:
        print(f"rlrt train: {done}")
        return 0
    except TrainingInterrupted as stop:
        print(f"\nrlrt train: {stop}", file=sys.stderr)
        return 130 if stop.signal_name == "SIGINT" else 143
    finally:
        if bars_were_on:
            transformers_logging.enable_progress_bar()
    print(f"\nrun folder: {run_dir}  (summary.md, metrics.csv, heldout.jsonl, final/)")
    return 0
