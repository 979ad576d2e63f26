"""Batched sampling from a causal LM, for evaluation and inspection (training uses TRL's generation)."""

from __future__ import annotations

import contextlib
import inspect
import weakref
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


MIN_SHARED_PREFIX = 8  # tokens; below this, computing the prefix once is not worth a second forward call


@torch.no_grad()
def sample_completion_ids(
    model,
    tokenizer,
    prompts: Sequence[str | list[dict[str, Any]]],
    num_samples: int,
    sampling: SamplingConfig,
    progress=None,
    share_prefix: bool = True,
) -> list[list[list[int]]]:
    """Token ids of ``num_samples`` completions per prompt, ``[prompt][sample]``, cut after the first EOS/pad.

    Prompts are repeated and generated in batches of ``sampling.batch_size`` sequences; ``progress``, if given,
    is called with the number of sequences finished after each batch. With ``share_prefix`` the tokens every
    sequence of a batch starts with (the samples of one prompt; a system prompt or few-shot example common to all)
    are run through the model once and their key/value cache is copied to every row (``generate_sharing_prefix``);
    the completions follow the same distribution as without it, at a fraction of the prompt cost.
    """
    torch.manual_seed(sampling.seed)
    device = next(model.parameters()).device
    texts = [prompt_text(tokenizer, p) for p in prompts]
    flat = [t for t in texts for _ in range(num_samples)]
    tokenizer.padding_side = "left"
    stop_ids = {tokenizer.pad_token_id, tokenizer.eos_token_id} - {None}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    outputs: list[list[int]] = []
    greedy = sampling.temperature == 0
    kwargs = dict(max_new_tokens=sampling.max_new_tokens, do_sample=not greedy, pad_token_id=pad_id)
    if not greedy:
        kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k or None)
    for start in range(0, len(flat), sampling.batch_size):
        chunk = flat[start : start + sampling.batch_size]
        with autocast_context(device, sampling.bf16):
            if share_prefix:
                rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in chunk]
                generated, width = generate_sharing_prefix(model, rows, pad_id, **kwargs)
            else:
                batch = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                generated, width = model.generate(**batch, **kwargs), batch["input_ids"].shape[1]
        outputs += [cut_at_stop(row, stop_ids, tokenizer.eos_token_id) for row in generated[:, width:].tolist()]
        if progress is not None:
            progress(len(generated))
    return [outputs[i * num_samples : (i + 1) * num_samples] for i in range(len(prompts))]


def cut_at_stop(row: list[int], stop_ids: set[int], eos_id: int | None) -> list[int]:
    """A generated row up to its first stop token: an EOS is kept, padding is dropped."""
    cut = next((i for i, token in enumerate(row) if token in stop_ids), len(row))
    return row[: cut + 1] if cut < len(row) and row[cut] == eos_id else row[:cut]


def shared_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """The number of leading tokens all ``rows`` share, at most ``min(len) - 1`` (every row keeps one token to feed
    the model, whose logits start its completion)."""
    if not rows:
        return 0
    bound = min(len(r) for r in rows) - 1
    first = rows[0]
    n = 0
    while n < bound and all(r[n] == first[n] for r in rows):
        n += 1
    return n


@torch.no_grad()
def generate_sharing_prefix(model, rows: Sequence[Sequence[int]], pad_id: int, **generate_kwargs):
    """``model.generate`` on the token-id sequences ``rows`` (B of them), computing their shared prefix once.

    The shared prefix (``shared_prefix_length``, P tokens) goes through the model at batch size 1; its cache is
    repeated B times and ``generate`` gets ``[prefix | padding | rest of the row]`` with the padding masked out, so
    each row's tokens keep the positions they have without padding (positions follow the attention mask, as for
    left padding) and only the rows' own tokens and the completion are computed per row. This is plain left-padded
    ``generate`` below ``MIN_SHARED_PREFIX`` shared tokens and for models whose cache is not plain full attention
    (sliding-window or linear/recurrent layers, a configured cache implementation, encoder-decoders), where padding
    between prefix and row would change what a row sees.

    Returns:
        ``(generated (B, W + new), W)``: the ids as ``generate`` returns them and the input width W (the
        completions are ``generated[:, W:]``).
    """
    device = next(model.parameters()).device
    prefix_len = shared_prefix_length(rows)
    cache = None
    if prefix_len >= MIN_SHARED_PREFIX and _may_share_prefix(model):
        cache = _prefix_cache(model, torch.tensor([list(rows[0][:prefix_len])], dtype=torch.long, device=device))
    prefix_len = prefix_len if cache is not None else 0
    rest = [list(r[prefix_len:]) for r in rows]
    width = max(len(r) for r in rest)
    ids = torch.full((len(rows), prefix_len + width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    ids[:, :prefix_len] = torch.tensor(list(rows[0][:prefix_len]), dtype=torch.long)
    mask[:, :prefix_len] = 1
    for i, r in enumerate(rest):
        ids[i, prefix_len + width - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, prefix_len + width - len(r) :] = 1
    if cache is not None:
        cache.batch_repeat_interleave(len(rows))
        generate_kwargs = dict(generate_kwargs, cache=cache)
    return model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **generate_kwargs), ids.shape[1]


_UNSHAREABLE: weakref.WeakSet = weakref.WeakSet()  # models whose prefix cache turned out not to be shareable


def _may_share_prefix(model) -> bool:
    config = getattr(model, "config", None)
    generation = getattr(model, "generation_config", None)
    return (model not in _UNSHAREABLE and config is not None and not getattr(config, "is_encoder_decoder", False)
            and getattr(generation, "cache_implementation", None) is None)


def _prefix_cache(model, prefix_ids: torch.Tensor):
    """The cache of ``prefix_ids (1, P)``, or ``None`` when it is not all plain full-attention layers."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    kwargs = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    out = model(input_ids=prefix_ids, attention_mask=torch.ones_like(prefix_ids), use_cache=True, **kwargs)
    cache = getattr(out, "cache", None)
    if not isinstance(cache, DynamicCache) or not all(type(layer) is DynamicLayer for layer in cache.layers):
        _UNSHAREABLE.add(model)
        return None
    return cache


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
    completion) is repeated ``num_samples`` times and generated in batches of ``sampling.batch_size`` sequences
    (memory is bounded by one batch), their shared prefix computed once (``generate_sharing_prefix``); the torch
    seed ``sampling.seed`` is set first.
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
        with autocast_context(device, sampling.bf16):
            generated, width = generate_sharing_prefix(model, flat[start : start + sampling.batch_size], pad_id,
                                                       **kwargs)
        outputs += [cut_at_stop(row, stop_ids, tokenizer.eos_token_id) for row in generated[:, width:].tolist()]
    return [outputs[i * num_samples : (i + 1) * num_samples] for i in range(len(sequences))]
