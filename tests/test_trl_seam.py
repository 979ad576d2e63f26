"""The TRL seam RLRTTrainer relies on. TRL's private methods change between releases: this fails first."""

from __future__ import annotations

import inspect

import trl
from trl import GRPOTrainer


def test_pinned_trl_version():
    assert trl.__version__ == "1.16.0", "RLRTTrainer is written against trl==1.16.0; re-check the seam below"


def test_overridden_methods_exist_with_expected_parameters():
    params = lambda name: list(inspect.signature(getattr(GRPOTrainer, name)).parameters)  # noqa: E731
    assert params("_calculate_rewards") == ["self", "inputs", "prompts", "completions", "completion_ids_list"]
    assert params("_generate_and_score_completions") == ["self", "inputs"]
    assert params("_compute_loss") == ["self", "model", "inputs"]
    assert params("_get_per_token_logps_and_entropies")[:6] == [
        "self", "model", "input_ids", "attention_mask", "logits_to_keep", "batch_size",
    ]


def test_loss_forward_runs_before_advantages_are_read_and_accepts_token_advantages():
    source = inspect.getsource(GRPOTrainer._compute_loss)
    forward = source.index("self._get_per_token_logps_and_entropies(")
    read = source.index('inputs["advantages"]')
    assert forward < read, "shaping with the loss-time forward needs the forward before advantages are read"
    assert "advantages.dim() == 1" in source, "TRL must still accept (B, T) advantages"
    assert source.count('inputs["advantages"]') == 1


def test_generation_output_keys_and_buffer_split():
    source = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    for key in ('"completion_ids"', '"completion_mask"', '"advantages"', '"old_per_token_logps"'):
        assert key in source
    assert "self._calculate_rewards(" in source
    prepare = inspect.getsource(GRPOTrainer._prepare_inputs)
    assert "shuffle_sequence_dict" in prepare and "split_tensor_dict" in prepare
