"""SDPO (Self-Distillation Policy Optimization, Hübotter et al. 2026, arXiv 2601.20802) as an rlrt baseline.

The training is TRL's own experimental ``SDPOTrainer`` (``trl.experimental.sdpo``, pinned ``trl==1.16.0``): its
rollouts, its teacher contexts built from successful sibling rollouts, its distillation loss and its teacher
(EMA by default). rlrt adds only what every rlrt trainer has, so an ``sdpo`` run folder reads like a ``grpo`` one:

* the reliability guards of ``rlrt.reliability.ReliableTrainerMixin`` (reward-error guard, non-finite steps,
  SIGINT/SIGTERM checkpoints, complete-marked checkpoints that ``--resume auto`` continues from); the EMA
  teacher is saved in every checkpoint (TRL's trainer does not save it) so a resumed run continues the same teacher;
* the reward metrics under GRPO's names (``reward``, ``reward_std``, ``rewards/<name>/mean``, ``/std``,
  ``frac_reward_zero_std``) and ``step_time``, beside SDPO's own ``self_distillation/*`` and
  ``sdpo/distillation_loss``;
* ``to_sdpo_config``: an ``RLRTConfig(shaping="sdpo")`` -> ``SDPOConfig`` (table in ``docs/sdpo.md``).
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import torch
from trl import GRPOConfig
from trl.import_utils import TRLExperimentalWarning
from trl.trainer.utils import nanstd

from ..config import SDPO, SDPO_TEACHER_KIND, RLRTConfig
from ..reliability import ReliableTrainerMixin
from ..trainer import check_tokenizer, check_train_dataset

with warnings.catch_warnings():
    warnings.simplefilter("ignore", TRLExperimentalWarning)
    from trl.experimental.sdpo import SDPOConfig, SDPOTrainer
    from trl.experimental.sdpo.teacher_sync import PEFTAdapterEMACallback

# GRPOConfig fields copied as they are except these: generation_batch_size is derived again by SDPOConfig from
# steps_per_generation (passing both is an error there).
NOT_COPIED = ("generation_batch_size",)


def to_sdpo_config(config: RLRTConfig) -> SDPOConfig:
    """The ``SDPOConfig`` an ``RLRTConfig(shaping="sdpo")`` trains with.

    Every field the two configs share (all ``TrainingArguments`` fields and the GRPO fields SDPO also has: learning
    rate, batch, generation, clipping, loss type, logging, saving, seed...) is copied with rlrt's value;
    ``teacher_weights`` ("live"/"frozen"/"ema") becomes ``teacher_model_kind`` ("live"/"base"/"ema"),
    ``teacher_ema_rate`` becomes ``teacher_update_rate`` and ``correctness_threshold`` becomes
    ``success_reward_threshold``; ``config.sdpo_options`` sets SDPO-only fields; every other SDPO field keeps SDPO's
    default.

    Raises:
        ValueError: ``config.shaping`` is not ``"sdpo"``, or SDPOConfig refuses a value (its own message).
    """
    if config.shaping != SDPO:
        raise ValueError(f"to_sdpo_config needs an RLRTConfig with shaping='sdpo'; got shaping={config.shaping!r}.")
    shared = {f.name for f in dataclasses.fields(GRPOConfig)} - set(NOT_COPIED)
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(SDPOConfig) if f.name in shared}
    values.update(
        teacher_model_kind=SDPO_TEACHER_KIND[config.teacher_weights],
        teacher_update_rate=config.teacher_ema_rate,
        success_reward_threshold=config.correctness_threshold,
    )
    values.update(config.sdpo_options or {})
    return SDPOConfig(**values)


class SDPOBaselineTrainer(ReliableTrainerMixin, SDPOTrainer):
    """TRL's ``SDPOTrainer`` with rlrt's guards and run-folder metrics; ``args`` is an ``RLRTConfig(shaping="sdpo")``.

    The constructor is ``SDPOTrainer``'s (``model, reward_funcs, args, train_dataset, processing_class,
    peft_config, ...``); ``self.args`` is the converted ``SDPOConfig`` and ``self.rlrt_args`` the ``RLRTConfig``.

    Example::

        trainer = SDPOBaselineTrainer(model="path/to/model", reward_funcs=[accuracy_reward],
                                      args=RLRTConfig(output_dir="out", shaping="sdpo"), train_dataset=dataset)
        trainer.train()
    """

    _tag_names = ["trl", "sdpo", "rlrt"]

    def __init__(self, model, reward_funcs, args: RLRTConfig | None = None, train_dataset=None, **kwargs):
        if args is None:
            args = RLRTConfig(output_dir="sdpo-output", shaping=SDPO)
        if not isinstance(args, RLRTConfig) or args.shaping != SDPO:
            raise TypeError(
                "SDPOBaselineTrainer needs args=RLRTConfig(shaping='sdpo', ...); for a plain SDPOConfig use TRL's "
                "trl.experimental.sdpo.SDPOTrainer directly."
            )
        check_train_dataset(train_dataset)
        check_tokenizer(kwargs.get("processing_class"), train_dataset)
        self.rlrt_args = args
        self._step_seconds = 0.0
        reward_funcs = self._guard_reward_funcs(reward_funcs, args)
        super().__init__(model=model, reward_funcs=reward_funcs, args=to_sdpo_config(args),
                         train_dataset=train_dataset, **kwargs)
        self._install_guards(args)

    # ------------------------------------------------------------------------------------- metrics

    def _any_correct(self, rewards_per_func: torch.Tensor) -> bool:
        """SDPO's notion of success: the weighted reward sum reaches ``success_reward_threshold``."""
        rewards = (rewards_per_func * self.reward_weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
        return bool((rewards >= self.args.success_reward_threshold).any())

    def _record_reward_diagnostics(self, mode, rewards, rewards_per_func, group_std_rewards):
        """SDPO's diagnostics, plus the reward metrics under GRPO's names (all over the gathered batch)."""
        super()._record_reward_diagnostics(mode, rewards, rewards_per_func, group_std_rewards)
        logged = rewards.clone().float()
        if rewards_per_func.numel() > 0:
            logged[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan  # unscorable rows, as GRPO logs them
            for i, name in enumerate(self.reward_func_names):
                self.log_metric(f"rewards/{name}/mean", torch.nanmean(rewards_per_func[:, i]).item(), mode)
                self.log_metric(f"rewards/{name}/std", nanstd(rewards_per_func[:, i]).item(), mode)
        self.log_metric("reward", torch.nanmean(logged).item(), mode)
        self.log_metric("reward_std", nanstd(logged).item(), mode)
        zero_std = torch.isclose(group_std_rewards, torch.zeros_like(group_std_rewards))
        self.log_metric("frac_reward_zero_std", zero_std.float().mean().item(), mode)

    def training_step(self, model, inputs, num_items_in_batch):
        started = time.perf_counter()
        output = super().training_step(model, inputs, num_items_in_batch)  # generation included, as in GRPO
        self._step_seconds += time.perf_counter() - started
        if self._step % self.current_gradient_accumulation_steps == 0:
            self.log_metric("step_time", self._step_seconds)
            self._step_seconds = 0.0
        return output

    # ---------------------------------------------------------------------------------- checkpoints

    def _ema_adapter_callback(self) -> PEFTAdapterEMACallback | None:
        return next((c for c in self.callback_handler.callbacks if isinstance(c, PEFTAdapterEMACallback)), None)

    def _checkpoint_state(self) -> dict:
        state = super()._checkpoint_state()
        if self.args.teacher_model_kind != "ema":  # "live" is the policy; "base" is reloaded from the model path
            return state
        adapter = self._ema_adapter_callback()
        if adapter is not None:
            shadow = adapter.shadow_weights
            state["sdpo_teacher_adapter"] = {k: v.detach().cpu().clone() for k, v in (shadow or {}).items()} or None
        else:
            teacher = self.accelerator.unwrap_model(self.teacher_model)
            state["sdpo_teacher"] = {k: v.detach().cpu().clone() for k, v in teacher.state_dict().items()}
        return state

    def _restore_checkpoint_state(self, state: dict) -> None:
        super()._restore_checkpoint_state(state)
        if state.get("sdpo_teacher") is not None:
            self.accelerator.unwrap_model(self.teacher_model).load_state_dict(state["sdpo_teacher"])
        if state.get("sdpo_teacher_adapter"):
            from peft import set_peft_model_state_dict

            adapter = self._ema_adapter_callback()
            model = self.accelerator.unwrap_model(self.model)
            if adapter.teacher_adapter_name in model.peft_config:  # transformers reloaded it from the checkpoint
                adapter.teacher_adapter_config = model.peft_config[adapter.teacher_adapter_name]
                adapter._initialized = True  # TRL's flag: do not re-create (and zero) the teacher adapter
            else:
                adapter._initialize_teacher_adapter()
            device = next(self.model.parameters()).device
            adapter.shadow_weights = {k: v.to(device) for k, v in state["sdpo_teacher_adapter"].items()}
            active = model.active_adapter
            model.set_adapter(adapter.teacher_adapter_name)
            set_peft_model_state_dict(model, adapter.shadow_weights, adapter_name=adapter.teacher_adapter_name)
            model.set_adapter(active)
