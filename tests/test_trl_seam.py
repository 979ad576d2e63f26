"""Every private TRL / transformers member the package relies on (the list in README "The TRL seam").

TRL's and transformers' private methods change between releases; after an upgrade, this file fails first and names
the member, instead of a run misbehaving. Keep it in step with ``rlrt/trainer.py``'s module docstring.
"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from pathlib import Path

import pytest
import transformers
import trl
from transformers import Trainer
from trl import GRPOTrainer

ROOT = Path(__file__).resolve().parents[1]


def params(owner, name: str) -> list[str]:
    return list(inspect.signature(getattr(owner, name)).parameters)


def test_pinned_versions_match_the_installed_ones():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert trl.__version__ == "1.16.0", "RLRTTrainer is written against trl==1.16.0; re-check this file"
    assert '"trl==1.16.0"' in pyproject
    pinned = re.search(r'"transformers==([^"]+)"', pyproject)
    assert pinned, "transformers must be pinned exactly, as TRL is"
    assert transformers.__version__ == pinned.group(1) == version("transformers")


# ------------------------------------------------------------------------------- methods the package overrides


@pytest.mark.parametrize(
    "owner, name, expected",
    [
        (GRPOTrainer, "_calculate_rewards", ["self", "inputs", "prompts", "completions", "completion_ids_list"]),
        (GRPOTrainer, "_generate_and_score_completions", ["self", "inputs"]),
        (GRPOTrainer, "_compute_loss", ["self", "model", "inputs"]),
        (GRPOTrainer, "compute_loss", ["self", "model", "inputs", "return_outputs", "num_items_in_batch"]),
        (GRPOTrainer, "training_step", ["self", "model", "inputs", "num_items_in_batch"]),
        (Trainer, "_save_checkpoint", ["self", "model", "trial"]),
        (Trainer, "_load_optimizer_and_scheduler", ["self", "checkpoint"]),
        (Trainer, "_issue_warnings_after_load", ["self", "load_result"]),
        (GRPOTrainer, "create_model_card", ["self", "model_name", "dataset_name", "tags"]),
    ],
)
def test_overridden_methods_keep_their_signature(owner, name, expected):
    assert params(owner, name) == expected, f"{owner.__name__}.{name} changed"


def test_sdpo_reward_diagnostics_override():
    from trl.experimental.sdpo import SDPOTrainer

    assert params(SDPOTrainer, "_record_reward_diagnostics") == [
        "self", "mode", "rewards", "rewards_per_func", "group_std_rewards",
    ]


# ------------------------------------------------------------------------------------ methods the package calls


def test_called_private_methods():
    assert params(GRPOTrainer, "_get_per_token_logps_and_entropies")[:6] == [
        "self", "model", "input_ids", "attention_mask", "logits_to_keep", "batch_size",
    ]
    assert params(Trainer, "_get_output_dir") == ["self", "trial"]
    from trl.trainer.utils import nanstd, selective_log_softmax  # noqa: F401  (teacher.model_logps_fn, SDPO metrics)


def test_loss_forward_runs_before_advantages_are_read_and_accepts_token_advantages():
    """``RLRTTrainer._shaped_loss`` swaps ``_get_per_token_logps_and_entropies`` on the instance for one call and
    shapes inside it: TRL must run that forward before it reads the advantages, exactly once."""
    source = inspect.getsource(GRPOTrainer._compute_loss)
    forward = source.index("self._get_per_token_logps_and_entropies(")
    read = source.index('inputs["advantages"]')
    assert forward < read, "shaping with the loss-time forward needs the forward before advantages are read"
    assert source.count("self._get_per_token_logps_and_entropies(") == 1
    assert "advantages.dim() == 1" in source, "TRL must still accept (B, T) advantages"
    assert source.count('inputs["advantages"]') == 1


def test_generation_output_keys_and_buffer_split():
    """The batch dict keys read, and extra keys (teacher_logps, has_teacher, correct) split with the rest."""
    source = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    for key in ('"completion_ids"', '"completion_mask"', '"advantages"', '"old_per_token_logps"',
                '"sampling_per_token_logps"', '"tool_mask"'):
        assert key in source, key
    assert "self._calculate_rewards(" in source
    prepare = inspect.getsource(GRPOTrainer._prepare_inputs)
    assert "shuffle_sequence_dict" in prepare and "split_tensor_dict" in prepare


def test_rewards_are_gathered_before_the_hook_sees_them():
    """``_calculate_rewards`` returns the rewards of the *global* batch (siblings on other processes)."""
    source = inspect.getsource(GRPOTrainer._calculate_rewards)
    assert "gather(" in source


# ------------------------------------------------------------------------------- attributes the package touches


def test_trainer_attributes(tiny_model_dir, tokenizer, tmp_path):
    """``_metrics`` (written only by ``ReliableTrainerMixin.log_metric``), ``_tokenizer``, ``_step`` and the public
    TRL attributes the hooks read, on a real trainer."""
    from datasets import Dataset

    from rlrt import RLRTConfig, RLRTTrainer
    from rlrt.rewards import parity_reward

    config = RLRTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_steps=1,
                        report_to="none", bf16=False, max_completion_length=4)
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": "1+1?"}], "answer": "2"}] * 4)
    trainer = RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward], args=config,
                          train_dataset=dataset, processing_class=tokenizer)
    assert set(trainer._metrics) == {"train", "eval"}
    trainer.log_metric("probe", 1.5)
    assert trainer._metrics["train"]["probe"] == [1.5]
    assert trainer._tokenizer.pad_token_id is not None
    assert isinstance(trainer._step, int)
    assert trainer.num_generations == 4 and trainer.reward_func_names == ["parity_reward"]
    assert trainer.chat_template_kwargs is None or isinstance(trainer.chat_template_kwargs, dict)
    assert isinstance(trainer.is_deepspeed_enabled, bool) and isinstance(trainer.is_fsdp_enabled, bool)
    assert trainer.callback_handler.callbacks
    assert trainer._get_output_dir(trial=None) == str(tmp_path)


def test_model_card_names_the_base_model(tiny_model_dir, tokenizer, tmp_path):
    """TRL 1.16 writes ``fine-tuned version of [None](https://huggingface.co/None)`` for a model in a local folder;
    ``RLRTTrainer.create_model_card`` names it instead (a hub id keeps its link)."""
    from datasets import Dataset

    from rlrt import RLRTConfig, RLRTTrainer
    from rlrt.rewards import parity_reward
    from rlrt.trainer import BROKEN_BASE_LINK

    config = RLRTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_steps=1,
                        report_to="none", bf16=False, max_completion_length=4)
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": "1+1?"}], "answer": "2"}] * 4)
    trainer = RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward], args=config,
                          train_dataset=dataset, processing_class=tokenizer)
    card = tmp_path / "README.md"
    GRPOTrainer.create_model_card(trainer, model_name="run")
    assert BROKEN_BASE_LINK in card.read_text()  # TRL's own card: what the override mends
    trainer.create_model_card(model_name="run")
    assert "huggingface.co/None" not in card.read_text()
    assert f"fine-tuned version of `{tiny_model_dir}`" in card.read_text()
    trainer.base_model_name = "smollm2-135m"  # as rlrt train sets it from --model
    trainer.create_model_card(model_name="run")
    assert "fine-tuned version of `smollm2-135m` (rlrt's embedded SmolLM2-135M-Instruct" in card.read_text()
    trainer.base_model_name = "HuggingFaceTB/SmolLM2-135M-Instruct"
    trainer.create_model_card(model_name="run")
    assert ("fine-tuned version of [HuggingFaceTB/SmolLM2-135M-Instruct]"
            "(https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct)") in card.read_text()


def test_step_counter_and_save_total_limit_are_read_where_the_package_expects():
    assert "self._step += 1" in inspect.getsource(GRPOTrainer.training_step)  # SDPO's step time uses it
    # ReliableTrainerMixin._save_checkpoint switches args.save_total_limit off for TRL's save and rotates itself
    # once the checkpoint is complete; it rewrites the training-args file TRL wrote with the limit switched off.
    save = inspect.getsource(Trainer._save_checkpoint)
    assert "self.args.save_total_limit" in save and "rotate_checkpoints(" in save
    from transformers.trainer import TRAINING_ARGS_NAME

    assert TRAINING_ARGS_NAME == "training_args.bin"
    assert "torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))" in inspect.getsource(
        inspect.getmodule(Trainer))


def test_progress_callback_bar_and_gguf_markers():
    from transformers import PreTrainedModel
    from transformers.trainer_callback import ProgressCallback

    assert "self.training_bar" in inspect.getsource(ProgressCallback)  # callbacks.LiveLineCallback writes above it
    assert "hf_quantizer" in inspect.getsource(PreTrainedModel.save_pretrained)  # models.py clears it for GGUF


def test_sdpo_adapter_callback_private_members():
    """``baselines.sdpo`` restores the LoRA EMA teacher adapter through these."""
    from trl.experimental.sdpo.teacher_sync import PEFTAdapterEMACallback

    source = inspect.getsource(PEFTAdapterEMACallback)
    for member in ("self._initialized", "def _initialize_teacher_adapter", "self.shadow_weights",
                   "self.teacher_adapter_name", "self.teacher_adapter_config"):
        assert member in source, member


def test_package_touches_no_other_private_member():
    """A new ``._name`` on a TRL/transformers object must be added here (and to the README list) first."""
    known = {"_metrics", "_tokenizer", "_step", "_get_per_token_logps_and_entropies", "_get_output_dir",
             "_calculate_rewards", "_generate_and_score_completions", "_compute_loss", "_save_checkpoint",
             "_load_optimizer_and_scheduler", "_issue_warnings_after_load", "_record_reward_diagnostics",
             "_initialized", "_initialize_teacher_adapter", "_prepare_inputs"}
    found = set()
    for path in (ROOT / "src" / "rlrt").rglob("*.py"):
        text = path.read_text()
        found |= set(re.findall(r"super\(\)\.(_[a-z][a-z_]*)", text))
        found |= set(re.findall(r"(?:adapter|trainer)\.(_[a-z][a-z_]*)", text))
        for name in ("_metrics", "_tokenizer", "_step", "_get_per_token_logps_and_entropies", "_get_output_dir"):
            if re.search(rf"self\.{name}\b", text):
                found.add(name)
    ours = {"_checkpoint_state", "_restore_checkpoint_state", "_evaluate", "_teacher_logps_fn",
            "_match_teacher_forward_count", "_reward_errors_logged"}
    assert found - ours <= known, sorted(found - ours - known)


def test_resume_reports_no_missing_tied_head(monkeypatch):
    """transformers warns that ``lm_head.weight`` is missing when a tied-embedding model resumes (the checkpoint
    stores the shared tensor once); the mixin drops tied names and keeps every really missing key."""
    import torch
    import transformers.trainer
    from transformers import LlamaConfig, LlamaForCausalLM

    from rlrt.reliability import ReliableTrainerMixin, really_missing_keys

    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    saved = {k: v.clone() + 1.0 for k, v in model.state_dict().items() if k != "lm_head.weight"}
    result = model.load_state_dict(saved, False)
    assert result.missing_keys == ["lm_head.weight"]
    assert torch.equal(model.lm_head.weight, saved["model.embed_tokens.weight"])  # loaded through the tie
    assert really_missing_keys(model, result.missing_keys) == []
    assert really_missing_keys(model, ["model.embed_tokens.weight", "lm_head.weight"]) == [
        "model.embed_tokens.weight", "lm_head.weight"]  # neither name loaded: both really missing
    assert really_missing_keys(model, ["model.norm.weight", "lm_head.weight"]) == ["model.norm.weight"]

    class Probe(ReliableTrainerMixin, Trainer):
        pass

    probe = object.__new__(Probe)
    probe.model = model
    warnings = []
    monkeypatch.setattr(transformers.trainer.logger, "warning", lambda message, *a, **k: warnings.append(message))
    probe._issue_warnings_after_load(result)
    assert warnings == []
    probe._issue_warnings_after_load(result._replace(missing_keys=["model.norm.weight", "lm_head.weight"]))
    assert len(warnings) == 1 and "['model.norm.weight']" in warnings[0]
