"""``RLRTConfig``: TRL's ``GRPOConfig`` plus the RLRT shaping and teacher options, validated in one place."""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from dataclasses import dataclass, field

from trl import GRPOConfig

from .algorithms.shaping import LOG_RATIO_CLAMP, VARIANTS, get_variant
from .models import cpu_supports_bf16
from .teacher import DEFAULT_TEACHER_TEMPLATE
from .text import did_you_mean

# Library warnings known to be harmless here, filtered by category and message (never all warnings): transformers 5
# renamed gradient checkpointing to activation checkpointing, and TRL 1.16 still sets and reads the old names.
KNOWN_HARMLESS_WARNINGS = (
    (FutureWarning, r"`gradient_checkpointing` is deprecated"),
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
)


def filter_known_warnings() -> None:
    """Silence exactly the ``KNOWN_HARMLESS_WARNINGS`` (called when ``rlrt.config`` is imported)."""
    for category, message in KNOWN_HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


filter_known_warnings()

# The loss types TRL 1.16's GRPOTrainer computes (checked here: TRL itself only fails at the first step).
TRL_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo", "cispo", "sapo", "vespo")
TEACHER_CONTEXTS = ("sibling", "reference", "answer")
TEACHER_WEIGHTS = ("live", "frozen", "ema")
STUDENT_LOGPS = ("rollout", "current")
SIBLING_SELECTIONS = ("random", "first", "shortest")
RLSD_LAMBDA_DECAY_STEPS = 50

# `shaping="sdpo"` trains with TRL's experimental SDPOTrainer instead (rlrt.baselines.sdpo; docs/sdpo.md).
SDPO = "sdpo"
SHAPINGS = (*VARIANTS, SDPO)
# RLRT options with an SDPO counterpart: rlrt's value -> SDPOConfig field (teacher_weights values are translated).
SDPO_MAPPED_FIELDS = {"teacher_weights": "teacher_model_kind", "teacher_ema_rate": "teacher_update_rate",
                      "correctness_threshold": "success_reward_threshold"}
SDPO_TEACHER_KIND = {"live": "live", "frozen": "base", "ema": "ema"}
# RLRT options with no SDPO meaning: refused with shaping="sdpo" unless left at their defaults.
RLRT_ONLY_FIELDS = ("shaping_lambda", "shaping_eps_w", "shaping_lambda_decay_steps", "log_ratio_clamp",
                    "student_logps", "correctness_reward", "teacher_context", "teacher_context_fallback",
                    "sibling_selection", "teacher_prompt_template", "max_teacher_prompt_length", "teacher_batch_size")
SDPO_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")

# Defaults of `rlrt train` that differ from RLRTConfig's: a short run that fits 2 CPU cores in a few minutes.
CPU_RUN_DEFAULTS = dict(
    per_device_train_batch_size=16,
    num_generations=8,
    max_completion_length=48,
    max_steps=8,
    learning_rate=1e-5,
    lr_scheduler_type="constant",
    logging_steps=1,
    save_strategy="no",
    report_to="none",
    gradient_checkpointing=False,
    temperature=1.0,
    output_dir="auto",
)


@dataclass
class RLRTConfig(GRPOConfig):
    r"""
    Configuration for [`RLRTTrainer`]: every [`~trl.GRPOConfig`] field, plus the options below.

    Defaults follow the paper's setting: `loss_type="dapo"`, `epsilon=0.2`, `epsilon_high=0.28` (clip-higher),
    `beta=0.0` (no KL), `num_generations=8`.

    > Token shaping

    shaping (`str`, defaults to `"rlrt"`):
        Variant: `"grpo"` (baseline), `"rlrt"` (self-driven tokens of correct rollouts up), `"rlrt_all"` (no
        reward gate), `"teacher_up"` (teacher-predicted tokens of correct rollouts up), `"rlsd"` (RLSD), or
        `"sdpo"`: the SDPO baseline, trained by TRL's experimental `SDPOTrainer` (see `sdpo_options` and
        `docs/sdpo.md` for which options carry over).
    shaping_lambda (`float`, defaults to `0.5`):
        Mixing weight `lam`: `A_t = A * ((1 - lam) + lam * clip(w, 1 - eps_w, 1 + eps_w))`.
    shaping_eps_w (`float`, defaults to `1.0`):
        Clip half-width of `w`. The paper uses 1.0 for base models, 0.5 instruction-tuned, 0.2 thinking.
    shaping_lambda_decay_steps (`int` or `None`, defaults to `None`):
        Decay `lam` linearly to 0 over this many optimizer steps; 0 disables. `None` picks the variant's
        default: 50 for `"rlsd"` (its published code), 0 otherwise.
    log_ratio_clamp (`float`, defaults to `20.0`):
        `|D|` is clamped to this before `exp`.
    student_logps (`str`, defaults to `"rollout"`):
        Where `log P_S` comes from: `"rollout"` uses the rollout-time log-probs GRPO already has (the
        old-policy forward, or vLLM's sampling log-probs) and, when on-policy training skipped them, the
        detached loss-time forward (identical values); `"current"` always uses the detached loss-time forward.
    correctness_reward (`str` or `None`, defaults to `None`):
        Name of the reward function whose value decides "correct" (the gate and sibling choice); `None` is
        the first reward function.
    correctness_threshold (`float`, defaults to `1.0`):
        A rollout is correct when that reward is `>=` this.

    > Teacher

    teacher_context (`str` or `None`, defaults to `None`):
        Privileged context: `"sibling"` (another correct rollout of the same prompt), `"reference"` (the
        dataset's `solution` column), `"answer"` (the gold `answer` column only). `None` picks the variant's
        default (`"reference"` for `"rlsd"`, `"sibling"` otherwise).
    teacher_context_fallback (`str` or `None`, defaults to `None`):
        With `"sibling"`, what a lone correct rollout uses: `None` (no teacher; plain GRPO for that row, the
        method's default), `"reference"` or `"answer"`.
    sibling_selection (`str`, defaults to `"random"`):
        Which correct sibling when there are several: `"random"` (seeded), `"first"`, `"shortest"`.
    teacher_prompt_template (`str`):
        User turn of the teacher prompt; `{prompt}` and `{solution}` are substituted literally (never with
        `str.format`, so LaTeX braces are safe). Defaults to SDPO's form.
    teacher_weights (`str` or `None`, defaults to `None`):
        `"live"` (current policy), `"frozen"` (the initial model; LoRA adapters disabled), `"ema"`. `None` picks
        the variant's default: `"ema"` for `"sdpo"` (SDPO's own default), `"live"` otherwise.
    teacher_ema_rate (`float`, defaults to `0.05`):
        `theta_T <- (1 - tau) * theta_T + tau * theta` after every optimizer step, when `teacher_weights="ema"`.
    max_teacher_prompt_length (`int`, defaults to `1536`):
        Bound, in tokens, on the teacher prompt; the context text is truncated to fit.
    teacher_batch_size (`int` or `None`, defaults to `None`):
        Rows per teacher forward chunk (bounds memory); `None` uses `per_device_train_batch_size`.

    > Reliability

    max_nonfinite_steps (`int`, defaults to `3`):
        An optimizer step whose loss or gradient is NaN/inf is skipped (no parameter changes), counted and logged as
        `rlrt/nonfinite_steps`; after this many the run stops with an error. Nothing corrupt is saved.
    reward_errors (`str`, defaults to `"skip"`):
        `"skip"`: a reward function that raises is retried sample by sample and the failing samples score `None`
        (counted in `rewards/<name>/errors`); `"raise"` (strict): the error stops the run.
    max_failed_reward_steps (`int`, defaults to `3`):
        With `reward_errors="skip"`: a reward function that fails on *every* sample of this many consecutive
        rollout batches is broken, not flaky; the run stops with an error naming it and its last error. 0 disables.
    no_correct_warning_steps (`int`, defaults to `10`):
        After this many consecutive rollout batches without a single correct rollout (per `correctness_reward`
        and `correctness_threshold`), warn once: GRPO learns nothing and RLRT shapes nothing from such batches.
        0 disables.
    checkpoint_on_signal (`bool`, defaults to `True`):
        SIGINT/SIGTERM during `train()` finish the current step, write a complete checkpoint and stop training.

    > SDPO baseline (`shaping="sdpo"`)

    sdpo_options (`dict`, JSON `str` or `None`, defaults to `None`):
        SDPO-only fields of TRL's `SDPOConfig` (e.g. `{"distillation_weight": 0.5, "distillation_mode":
        "full_logits"}`); every field not given keeps SDPO's own default. Shared fields (learning rate, batch,
        generation, saving...) are the usual options; `teacher_weights`, `teacher_ema_rate` and
        `correctness_threshold` map to SDPO's `teacher_model_kind`, `teacher_update_rate` and
        `success_reward_threshold`.
    """

    _VALID_DICT_FIELDS = GRPOConfig._VALID_DICT_FIELDS + ["sdpo_options"]


    epsilon_high: float | None = field(
        default=0.28, metadata={"help": "Upper clip epsilon (DAPO clip-higher); the paper's setting is 0.28."}
    )
    shaping: str = field(
        default="rlrt",
        metadata={"help": f"Token shaping variant, one of {sorted(VARIANTS)}, or 'sdpo' (TRL's SDPOTrainer)."},
    )
    shaping_lambda: float = field(default=0.5, metadata={"help": "Mixing weight lam in [0, 1]."})
    shaping_eps_w: float = field(default=1.0, metadata={"help": "Clip half-width eps_w of the token weight (> 0)."})
    shaping_lambda_decay_steps: int | None = field(
        default=None,
        metadata={"help": "Linear decay of lam to 0 over N optimizer steps; 0 = none; None = variant default."},
    )
    log_ratio_clamp: float = field(
        default=LOG_RATIO_CLAMP, metadata={"help": "Bound on |log P_S - log P_T| before exp."}
    )
    student_logps: str = field(default="rollout", metadata={"help": f"Source of log P_S, one of {STUDENT_LOGPS}."})
    correctness_reward: str | None = field(
        default=None, metadata={"help": "Reward function name deciding correctness; None = the first."}
    )
    correctness_threshold: float = field(default=1.0, metadata={"help": "Correct when that reward >= this."})
    teacher_context: str | None = field(
        default=None, metadata={"help": f"Teacher context, one of {TEACHER_CONTEXTS}; None = variant default."}
    )
    teacher_context_fallback: str | None = field(
        default=None, metadata={"help": "For a lone correct rollout: None, 'reference' or 'answer'."}
    )
    sibling_selection: str = field(default="random", metadata={"help": f"One of {SIBLING_SELECTIONS}."})
    teacher_prompt_template: str = field(
        default=DEFAULT_TEACHER_TEMPLATE, metadata={"help": "Teacher user turn with {prompt} and {solution}."}
    )
    teacher_weights: str | None = field(
        default=None,
        metadata={"help": f"Teacher weights, one of {TEACHER_WEIGHTS}; None = variant default ('ema' for sdpo, "
                  "'live' otherwise)."},
    )
    teacher_ema_rate: float = field(default=0.05, metadata={"help": "EMA rate tau in (0, 1]."})
    max_teacher_prompt_length: int = field(default=1536, metadata={"help": "Teacher prompt bound in tokens."})
    teacher_batch_size: int | None = field(default=None, metadata={"help": "Rows per teacher forward chunk."})
    max_nonfinite_steps: int = field(
        default=3, metadata={"help": "Stop after this many optimizer steps skipped for a NaN/inf loss or gradient."}
    )
    reward_errors: str = field(
        default="skip",
        metadata={"help": "A reward function that raises: 'skip' scores the failing samples None and goes on; "
                  "'raise' (strict) stops the run."},
    )
    max_failed_reward_steps: int = field(
        default=3,
        metadata={"help": "Stop when a reward function fails on every sample of this many consecutive rollout "
                  "batches (0: never)."},
    )
    no_correct_warning_steps: int = field(
        default=10,
        metadata={
            "help": "Warn once after this many consecutive rollout batches without a correct rollout (0: never)."
        },
    )
    checkpoint_on_signal: bool = field(
        default=True, metadata={"help": "On SIGINT/SIGTERM, finish the step, write a checkpoint and stop."}
    )
    sdpo_options: dict | str | None = field(
        default=None,
        metadata={"help": "With --shaping sdpo: SDPO-only SDPOConfig fields as JSON, e.g. "
                  "'{\"distillation_weight\": 0.5}'; unset ones keep SDPO's defaults (docs/sdpo.md)."},
    )

    def __post_init__(self):
        if not _accelerator_available() and not self.use_cpu:
            # TRL defaults to bf16 mixed precision, which transformers refuses on a machine without an accelerator
            # unless use_cpu is set: train on the CPU, in bf16 autocast only where the CPU has bf16 instructions.
            self.use_cpu = True
            if self.bf16 is None:
                self.bf16 = cpu_supports_bf16()
        _check_counts(self)
        user_set = {"generation_batch_size": self.generation_batch_size,
                    "steps_per_generation": self.steps_per_generation}
        try:
            super().__post_init__()
        except ValueError as err:
            if "must be divisible by num_generations" not in str(err):
                raise
            raise ValueError(_batch_message(self, user_set)) from None
        for name in ("max_nonfinite_steps", "max_failed_reward_steps", "no_correct_warning_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}.")
        _check_choice("reward_errors", self.reward_errors, ("skip", "raise"))
        if not math.isfinite(self.correctness_threshold):
            raise ValueError(f"correctness_threshold must be a finite reward value; got {self.correctness_threshold} "
                             "(a rollout is correct when its correctness reward is >= it; 1.0 for 0/1 rewards).")
        if self.shaping == SDPO:
            self._check_sdpo()
            return
        if self.shaping not in VARIANTS:
            hint = did_you_mean(self.shaping, SHAPINGS)
            raise ValueError(f"Unknown shaping mode {self.shaping!r}{hint}; choose one of {list(SHAPINGS)}.")
        if self.sdpo_options:
            raise ValueError(f"sdpo_options only applies to shaping='sdpo', not {self.shaping!r}: remove it.")
        variant = get_variant(self.shaping)
        if self.teacher_weights is None:
            self.teacher_weights = "live"
        if self.teacher_context is None:
            self.teacher_context = variant.default_context or "sibling"
        if self.shaping_lambda_decay_steps is None:
            self.shaping_lambda_decay_steps = RLSD_LAMBDA_DECAY_STEPS if self.shaping == "rlsd" else 0
        _check_choice("teacher_context", self.teacher_context, TEACHER_CONTEXTS)
        _check_choice("teacher_weights", self.teacher_weights, TEACHER_WEIGHTS)
        _check_choice("student_logps", self.student_logps, STUDENT_LOGPS)
        _check_choice("sibling_selection", self.sibling_selection, SIBLING_SELECTIONS)
        if self.teacher_context_fallback is not None:
            _check_choice("teacher_context_fallback", self.teacher_context_fallback, ("reference", "answer"))
            if self.teacher_context != "sibling":
                raise ValueError(
                    "teacher_context_fallback only applies to teacher_context='sibling'; "
                    f"got teacher_context={self.teacher_context!r}. Remove teacher_context_fallback."
                )
        if not 0.0 <= self.shaping_lambda <= 1.0:
            raise ValueError(f"shaping_lambda must lie in [0, 1]; got {self.shaping_lambda}. The paper uses 0.5.")
        if not self.shaping_eps_w > 0.0:
            raise ValueError(f"shaping_eps_w must be > 0; got {self.shaping_eps_w}. Use 1.0 (base), 0.5 or 0.2.")
        if self.shaping_lambda_decay_steps < 0:
            raise ValueError(f"shaping_lambda_decay_steps must be >= 0; got {self.shaping_lambda_decay_steps}.")
        if not self.log_ratio_clamp > 0.0:
            raise ValueError(f"log_ratio_clamp must be > 0; got {self.log_ratio_clamp}.")
        if not 0.0 < self.teacher_ema_rate <= 1.0:
            raise ValueError(f"teacher_ema_rate must lie in (0, 1]; got {self.teacher_ema_rate}. SDPO uses 0.05.")
        if self.max_teacher_prompt_length < 16:
            raise ValueError(f"max_teacher_prompt_length must be >= 16 tokens; got {self.max_teacher_prompt_length}.")
        if self.teacher_batch_size is not None and self.teacher_batch_size < 1:
            raise ValueError(f"teacher_batch_size must be >= 1 or None; got {self.teacher_batch_size}.")
        for placeholder in ("{prompt}", "{solution}"):
            if placeholder not in self.teacher_prompt_template:
                raise ValueError(
                    f"teacher_prompt_template must contain {placeholder}; got {self.teacher_prompt_template!r}."
                )

    def _check_sdpo(self) -> None:
        """Refuse what TRL's SDPOTrainer cannot honour, each with one line (docs/sdpo.md has the table)."""
        sdpo_config = sdpo_config_class()
        defaults = _field_defaults(RLRTConfig)
        changed = [name for name in RLRT_ONLY_FIELDS if getattr(self, name) != defaults[name]]
        if changed:
            raise ValueError(
                f"shaping='sdpo' trains with TRL's SDPOTrainer, where {', '.join(changed)} "
                f"{'has' if len(changed) == 1 else 'have'} no meaning: remove {'it' if len(changed) == 1 else 'them'} "
                "(SDPO's own options go in sdpo_options; see docs/sdpo.md)."
            )
        sdpo_fields = {f.name for f in dataclasses.fields(sdpo_config)}
        grpo_defaults = _field_defaults(GRPOConfig)
        resolved = _resolved_grpo_defaults()  # some defaults are resolved in __post_init__ ("auto" -> None)
        grpo_only = [name for name in grpo_defaults if name not in sdpo_fields
                     and getattr(self, name) not in (grpo_defaults[name], resolved[name])]
        if grpo_only:
            raise ValueError(
                f"shaping='sdpo': TRL's SDPOConfig has no option {', '.join(grpo_only)} (a GRPOConfig option): "
                "remove it, or train a GRPO-based shaping."
            )
        if self.beta != 0.0:
            raise ValueError(f"shaping='sdpo': TRL's SDPOTrainer has no KL term, so beta={self.beta} would be "
                             "ignored: remove beta (or set it to 0).")
        if self.loss_type not in SDPO_LOSS_TYPES:
            raise ValueError(f"shaping='sdpo': loss_type={self.loss_type!r} is not one of SDPOTrainer's "
                             f"{list(SDPO_LOSS_TYPES)}.")
        if self.teacher_weights is None:
            self.teacher_weights = "ema"
        _check_choice("teacher_weights", self.teacher_weights, TEACHER_WEIGHTS)
        if not 0.0 < self.teacher_ema_rate <= 1.0:
            raise ValueError(f"teacher_ema_rate must lie in (0, 1]; got {self.teacher_ema_rate}. SDPO uses 0.05.")
        options = self.sdpo_options or {}
        if not isinstance(options, dict):
            raise ValueError(f"sdpo_options must be a JSON object of SDPOConfig fields; got {options!r}.")
        for key in options:
            if key in SDPO_MAPPED_FIELDS.values():
                rlrt_name = next(k for k, v in SDPO_MAPPED_FIELDS.items() if v == key)
                raise ValueError(f"sdpo_options: set {rlrt_name} instead of {key} (it maps to SDPO's {key}).")
            if key in grpo_defaults:
                raise ValueError(f"sdpo_options: {key} is a shared option; set it directly (--{key}), not in "
                                 "sdpo_options.")
            if key not in sdpo_fields:
                mapped = SDPO_MAPPED_FIELDS.values()
                own = [f for f in sorted(sdpo_fields) if f not in grpo_defaults and f not in mapped]
                raise ValueError(f"sdpo_options: SDPOConfig has no field {key!r}{did_you_mean(key, own)}; its own "
                                 f"fields are {own} (trl.experimental.sdpo.SDPOConfig).")

    @property
    def variant(self):
        """The selected [`~rlrt.algorithms.ShapingVariant`] (none for `"sdpo"`, which is not a shaping of GRPO)."""
        if self.shaping == SDPO:
            raise ValueError("shaping='sdpo' is TRL's SDPOTrainer, not an RLRT shaping variant.")
        return get_variant(self.shaping)


def config_default(name: str):
    """The default of ``RLRTConfig.<name>``, for commands whose flags mirror training's (one source of defaults)."""
    defaults = _field_defaults(RLRTConfig)
    if name not in defaults:
        raise KeyError(f"RLRTConfig has no field {name!r}")
    return defaults[name]


def config_field(name: str, help: str | None = None):
    """A dataclass field with ``RLRTConfig.<name>``'s default and help text (or ``help``), for commands whose flags
    mirror training's. Raises ``KeyError`` for a name RLRTConfig does not have."""
    default = config_default(name)
    text = help or next(f.metadata.get("help") for f in dataclasses.fields(RLRTConfig) if f.name == name)
    return field(default=default, metadata={"help": text})


def sdpo_config_class():
    """TRL's experimental ``SDPOConfig``, imported without TRL's experimental-API warning (trl is pinned)."""
    from trl.import_utils import TRLExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TRLExperimentalWarning)
        from trl.experimental.sdpo import SDPOConfig
    return SDPOConfig


@functools.cache
def _resolved_grpo_defaults() -> dict:
    config = GRPOConfig(output_dir="unused", use_cpu=True, bf16=False, report_to="none")
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(GRPOConfig)}


def _field_defaults(cls) -> dict:
    values = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
    return values


def _accelerator_available() -> bool:
    import torch

    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


def _check_counts(config: RLRTConfig) -> None:
    """Counts that make no sense (zero steps, empty batches...) fail here, before TRL divides by them."""
    if config.max_steps == 0 or config.max_steps < -1:
        raise ValueError(
            f"max_steps={config.max_steps} would train no step (or an undefined number): set max_steps >= 1, or -1 "
            "to train for num_train_epochs."
        )
    if config.max_steps == -1 and not config.num_train_epochs > 0:
        raise ValueError(f"num_train_epochs must be > 0 when max_steps=-1; got {config.num_train_epochs}.")
    at_least = {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 1, "num_generations": 2,
                "max_completion_length": 1, "steps_per_generation": 1, "generation_batch_size": 1}
    for name, low in at_least.items():
        value = getattr(config, name, None)
        if value is not None and value < low:
            raise ValueError(f"{name} must be >= {low}; got {value}.")
    if not config.temperature > 0:
        raise ValueError(
            f"temperature must be > 0; got {config.temperature}. GRPO samples a group of different rollouts per "
            "prompt (1.0 is the usual value)."
        )
    if config.learning_rate < 0:
        raise ValueError(f"learning_rate must be >= 0; got {config.learning_rate}.")
    if not 0 < config.top_p <= 1:
        raise ValueError(f"top_p must lie in (0, 1]; got {config.top_p}.")
    for name in ("epsilon", "epsilon_high", "beta", "top_k"):
        value = getattr(config, name, None)
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0; got {value}.")
    if config.num_iterations < 1:
        raise ValueError(f"num_iterations must be >= 1; got {config.num_iterations}.")
    _check_choice("loss_type", config.loss_type, TRL_LOSS_TYPES)
    if str(getattr(config.save_strategy, "value", config.save_strategy)) == "steps" and not config.save_steps > 0:
        raise ValueError(f"save_steps must be > 0 with save_strategy='steps'; got {config.save_steps}.")


def _batch_message(config: RLRTConfig, user_set: dict) -> str:
    """Why the completions of one generation round do not split into groups, in the settings the user set."""
    per_device, groups = config.per_device_train_batch_size, config.num_generations
    if user_set["generation_batch_size"] is not None:
        return (
            f"generation_batch_size ({config.generation_batch_size}) must be a multiple of num_generations ({groups}) "
            "so that every prompt's group of completions is complete: change one of the two."
        )
    steps_name = (
        "steps_per_generation" if user_set["steps_per_generation"] is not None else "gradient_accumulation_steps"
    )
    steps = config.steps_per_generation
    processes = max(config.generation_batch_size // max(per_device * steps, 1), 1)
    suggestion = next(
        b for b in range(per_device + 1, per_device + groups + 1) if (b * steps * processes) % groups == 0
    )
    return (
        f"per_device_train_batch_size ({per_device}) x {steps_name} ({steps}) x {processes} process(es) = "
        f"{config.generation_batch_size} completions per rollout batch, which is not a multiple of num_generations "
        f"({groups}): every prompt needs its full group. Set per_device_train_batch_size={suggestion}, or a "
        f"num_generations that divides {config.generation_batch_size}."
    )


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid{did_you_mean(value, choices)}; choose one of {list(choices)}.")
