"""Batched sampling from a causal LM, for evaluation and inspection (training uses TRL's generation)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..models import cpu_supports_bf16


@dataclass
class SamplingConfig:
    """Sampling settings; recorded next to every evaluation result.

    Attributes:
        max_new_tokens: completion length bound.
        temperature: 0 means greedy.
        top_p, top_k: nucleus / top-k filtering (``top_k = 0`` disables it).
        batch_size: sequences generated together (32 to 64 keeps 2 CPU cores busy).
        seed: torch seed set before sampling.
        bf16: bf16 autocast; ``None`` = on where the device supports it (CUDA, or a CPU with AVX512-BF16/AMX).
    """

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    batch_size: int = 32
    seed: int = 0
    bf16: bool | None = None

    def __post_init__(self):
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be >= 1.")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be >= 0 and top_p in (0, 1].")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def autocast_context(device: torch.device, bf16: bool | None):
    """bf16 autocast on ``device`` when asked for (or, for ``None``, when supported); a no-op otherwise."""
    if bf16 is None:
        bf16 = torch.cuda.is_available() if device.type == "cuda" else cpu_supports_bf16()
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def prompt_text(tokenizer, prompt: str | list[dict[str, Any]]) -> str:
    """The text a prompt is fed as: chat template with generation prompt, or the plain string."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


@torch.no_grad()
def sample_completion_ids(
    model,
    tokenizer,
    prompts: Sequence[str | list[dict[str, Any]]],
    num_samples: int,
    sampling: SamplingConfig,
    progress=None,
) -> list[list[list[int]]]:
    """Token ids of ``num_samples`` completions per prompt, ``[prompt][sample]``, cut after the first EOS/pad.

    Prompts are repeated and generated in batches of ``sampling.batch_size`` sequences; ``progress``, if given,
    is called with the number of sequences finished after each batch.
    """
    torch.manual_seed(sampling.seed)
    device = next(model.parameters()).device
    texts = [prompt_text(tokenizer, p) for p in prompts]
    flat = [t for t in texts for _ in range(num_samples)]
    tokenizer.padding_side = "left"
    stop_ids = {tokenizer.pad_token_id, tokenizer.eos_token_id} - {None}
    outputs: list[list[int]] = []
    greedy = sampling.temperature == 0
    for start in range(0, len(flat), sampling.batch_size):
        batch = tokenizer(flat[start : start + sampling.batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(device)
        kwargs = dict(max_new_tokens=sampling.max_new_tokens, do_sample=not greedy,
                      pad_token_id=tokenizer.pad_token_id)
        if not greedy:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k or None)
        with autocast_context(device, sampling.bf16):
            generated = model.generate(**batch, **kwargs)
        for row in generated[:, batch["input_ids"].shape[1] :].tolist():
            cut = next((i for i, token in enumerate(row) if token in stop_ids), len(row))
            outputs.append(row[: cut + 1] if cut < len(row) and row[cut] == tokenizer.eos_token_id else row[:cut])
        if progress is not None:
            progress(len(generated))
    return [outputs[i * num_samples : (i + 1) * num_samples] for i in range(len(prompts))]


def sample_completions(
    model,
    tokenizer,
    prompts: Sequence[str | list[dict[str, Any]]],
    num_samples: int,
    sampling: SamplingConfig,
    progress=None,
) -> list[list[str]]:
    """``num_samples`` completions for each prompt, as ``[prompt][sample]`` strings (special tokens removed)."""
    ids = sample_completion_ids(model, tokenizer, prompts, num_samples, sampling, progress)
    return [[tokenizer.decode(c, skip_special_tokens=True) for c in per_prompt] for per_prompt in ids]


@torch.no_grad()
def sample_continuation_ids(
    model,
    tokenizer,
    sequences: Sequence[Sequence[int]],
    num_samples: int,
    sampling: SamplingConfig,
) -> list[list[list[int]]]:
    """``num_samples`` continuations of each token-id sequence, ``[sequence][sample]``, cut after the first EOS/pad.

    For prefixes already in token ids (no re-tokenisation at the cut): each sequence (prompt plus a partial
    completion) is repeated ``num_samples`` times, left-padded, and generated in batches of ``sampling.batch_size``
    sequences (memory is bounded by one batch); the torch seed ``sampling.seed`` is set first.
    """
    torch.manual_seed(sampling.seed)
    device = next(model.parameters()).device
    flat = [list(s) for s in sequences for _ in range(num_samples)]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stop_ids = {tokenizer.pad_token_id, tokenizer.eos_token_id} - {None}
    greedy = sampling.temperature == 0
    kwargs = dict(max_new_tokens=sampling.max_new_tokens, do_sample=not greedy, pad_token_id=pad_id)
    if not greedy:
        kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k or None)
    outputs: list[list[int]] = []
    for start in range(0, len(flat), sampling.batch_size):
        chunk = flat[start : start + sampling.batch_size]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, seq in enumerate(chunk):
            ids[i, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[i, width - len(seq) :] = 1
        with autocast_context(device, sampling.bf16):
            generated = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
        for row in generated[:, width:].tolist():
            cut = next((i for i, token in enumerate(row) if token in stop_ids), len(row))
            outputs.append(row[: cut + 1] if cut < len(row) and row[cut] == tokenizer.eos_token_id else row[:cut])
    return [outputs[i * num_samples : (i + 1) * num_samples] for i in range(len(sequences))]
