"""Shared fixtures: a tiny random causal LM with the embedded model's real tokenizer and chat template."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tokenizer():
    """The embedded model's tokenizer; ``$RLRT_TEST_TOKENIZER`` names a folder holding only its tokenizer files,
    for a machine without the embedded model package (the GPU tests travel to such machines)."""
    from rlrt.models import embedded_model_dir, load_tokenizer

    return load_tokenizer(os.environ.get("RLRT_TEST_TOKENIZER") or str(embedded_model_dir()))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A 2-layer Llama with 32 hidden units, random weights (seeded), saved with the SmolLM2 tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def dataset():
    """Eight chat prompts ``What is i + i?`` with ``answer`` and a ``solution`` (the ``reference`` context)."""
    from datasets import Dataset

    return Dataset.from_list([
        {
            "prompt": [{"role": "user", "content": f"What is {i} + {i}?"}],
            "answer": str(2 * i),
            "solution": f"{i} + {i} = \\boxed{{{2 * i}}}",
        }
        for i in range(8)
    ])
