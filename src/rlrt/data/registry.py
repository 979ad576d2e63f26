"""One entry point from a dataset *name* (CLI and configs) to a ``Dataset``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from datasets import Dataset

from ..text import check_option_keys, did_you_mean
from .chain import CHAIN_TASK, chain_task
from .formatting import PromptFormat
from .loaders import HUB_PRESETS, LOCAL_FORMATS, load_hub, load_local, load_reasoning_gym
from .tasks import DEFAULT_TASK, addition_task

SPLITS = ("train", "test")
FORMAT_OPTIONS = ("instruction", "system_prompt", "chat")


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"addition:test"`` -> ``("addition", "test")``; no ``:train``/``:test`` suffix -> ``(spec, None)``: the
    source's default split (``train``; a hub preset's own, e.g. ``test`` for math500)."""
    name, _, split = spec.rpartition(":")
    if name and split in SPLITS:
        return name, split
    return spec, None


def held_out_split_of(spec: str) -> str | None:
    """The held-out split of the dataset ``spec`` when it has a known one: ``"<name>:test"`` for the built-in and
    reasoning-gym tasks (``"chain:train"`` -> ``"chain:test"``); ``None`` for local files and hub presets (no split
    known to be disjoint from the training rows)."""
    name = split_spec(str(spec))[0]
    if name in (DEFAULT_TASK, "default", CHAIN_TASK) or name.startswith("rg:"):
        return f"{name}:test"
    return None


def canonical_spec(spec: str) -> str:
    """The one spelling of a ``--dataset`` spec, so that two specs name the same split exactly when their canonical
    forms are equal: the default split written out (``"chain"`` -> ``"chain:train"``, ``"math500"`` ->
    ``"math500:test"``, a hub preset's first split), ``"default"`` as ``"addition"``, a local file as its absolute,
    normalized path (``"./data/x.jsonl"`` -> ``"/home/me/data/x.jsonl"``, resolved against the current folder).
    Anything else is returned as given. Dataset options (difficulty, seed) are not part of a spec."""
    name, split = split_spec(str(spec))
    if name == "default":
        name = DEFAULT_TASK
    if name in (DEFAULT_TASK, CHAIN_TASK) or name.startswith("rg:"):
        split = split or "train"
    elif name in HUB_PRESETS:
        split = split or HUB_PRESETS[name].splits[0]
    elif split is None and (Path(name).suffix.lower() in LOCAL_FORMATS or Path(name).expanduser().exists()):
        name = str(Path(name).expanduser().absolute().resolve())
    return f"{name}:{split}" if split else name


DATASET_OPTION_FLAGS = {"seed": "the command's seed flag", "limit": "the command's limit flag",
                        "split": "the dataset spec (e.g. chain:test)"}


def parse_dataset_options(text: str | None, own_flags: dict[str, str] | None = None) -> dict[str, Any]:
    """``--dataset_options`` (a JSON object, or empty) as a dict; anything else raises ``ValueError``, as does a
    key with a flag of its own (``seed``, ``limit``, ``split``: ``load_task``'s own arguments; ``own_flags`` maps
    them, and any other key a command takes elsewhere, to the flag that command has for it)."""
    import json

    try:
        options = json.loads(text) if text else {}
    except json.JSONDecodeError as err:
        raise ValueError(f"--dataset_options is not valid JSON ({err.msg}): {text!r}.") from None
    if not isinstance(options, dict):
        raise ValueError(f"--dataset_options must be a JSON object, got {text!r}.")
    for key, flag in {**DATASET_OPTION_FLAGS, **(own_flags or {})}.items():
        if key in options:
            raise ValueError(f"--dataset_options sets {key!r}, which has its own flag: drop it and use {flag}.")
    return options


def load_task(spec: str, split: str | None = None, limit: int | None = None, seed: int = 0, **options: Any) -> Dataset:
    """Resolve ``spec``:

    ``split=None`` means the source's default: ``train``, or a hub preset's first split.

    * ``"addition"`` (or ``"default"``): the built-in default task, ``split`` ``train``/``test``;
    * ``"chain"``: the built-in chained-operations task, ``split`` ``train``/``test``; ``options`` are its
      difficulty (``steps``, ``max_operand``, ``operations``, see ``ChainOptions``);
    * ``"rg:<task>"``: a reasoning-gym task (``options`` are its parameters; ``split="test"`` draws from a
      different seed, ``seed + 1_000_003``, so the two splits are separate);
    * a hub preset name (needs network): one of ``HUB_PRESETS``, ``split`` one of its splits;
    * a path to a ``.jsonl``/``.json``/``.parquet``/``.csv`` file (``options`` may map columns).

    ``instruction``, ``system_prompt`` and ``chat`` in ``options`` set the ``PromptFormat`` (not for the built-in
    tasks, whose format is fixed).

    ``spec`` may name its split as on the command line (``"chain:test"``, ``"rg:chain_sum:test"``); ``split`` then
    stays ``None`` or agrees (``ValueError`` otherwise).
    """
    name, named_split = split_spec(spec)
    if named_split is not None:
        if split not in (None, named_split):
            raise ValueError(f"{spec!r} names the split {named_split!r} and split={split!r} another: give one of them.")
        spec, split = name, named_split
    format_keys = {k: options.pop(k) for k in FORMAT_OPTIONS if k in options}
    fmt = PromptFormat(**format_keys) if format_keys else None
    if spec in HUB_PRESETS:
        _no_options(spec, options, "a hub preset")
        return load_hub(spec, split=split, limit=limit, fmt=fmt)
    if spec in (DEFAULT_TASK, "default"):
        _no_options(spec, {**options, **format_keys}, "the built-in task (its prompt format is fixed)")
        return addition_task(split or "train", limit=limit, seed=seed)
    if spec == CHAIN_TASK:
        _no_options(spec, format_keys, "a built-in task (its prompt format is fixed)")
        return chain_task(split or "train", limit=limit, seed=seed, **options)
    if spec.startswith("rg:"):
        if ":" in spec[3:]:
            source, _, other_split = spec.rpartition(":")
            raise ValueError(f"{source} has the splits {list(SPLITS)}; got {other_split!r}: ask for one of them "
                             f"(e.g. {source}:test).")
        if split not in (None, "train", "test"):
            raise ValueError(f"reasoning-gym tasks have the splits 'train' and 'test'; got {split!r}.")
        size = options.pop("size", limit or 256)
        split_seed = seed if split in (None, "train") else seed + 1_000_003
        dataset = load_reasoning_gym(spec[3:], size=size, seed=split_seed, fmt=fmt, **options)
        # a `size` option draws that many problems; `limit` still keeps only the first of them
        return dataset.select(range(limit)) if limit is not None and limit < len(dataset) else dataset
    if Path(spec).suffix.lower() in LOCAL_FORMATS or Path(spec).exists():
        if split is not None:
            raise ValueError(
                f"{spec} is a local file, which has no {split!r} split: drop ':{split}' and keep each split in its "
                "own file."
            )
        allowed = [p for p in inspect.signature(load_local).parameters if p not in ("path", "fmt", "limit")]
        check_option_keys(options, allowed, "a local file's --dataset_options (the prompt format's are "
                          f"{list(FORMAT_OPTIONS)})")
        return load_local(spec, limit=limit, fmt=fmt, **options)
    source, _, other_split = spec.rpartition(":")
    if source in HUB_PRESETS:
        return load_hub(source, split=other_split)  # raises, listing the preset's splits
    if source in (DEFAULT_TASK, "default", CHAIN_TASK):
        raise ValueError(f"{source} has the splits {list(SPLITS)}; got {other_split!r}: ask for one of them "
                         f"(e.g. {source}:test).")
    known = [DEFAULT_TASK, "default", CHAIN_TASK, *HUB_PRESETS]
    raise ValueError(
        f"Unknown dataset {spec!r}{did_you_mean(spec, known)}. Use 'addition' or 'chain' (built-in), "
        "'rg:<reasoning-gym task>' "
        f"(e.g. rg:chain_sum), a hub preset {sorted(HUB_PRESETS)}, or a path to a .jsonl/.parquet/.csv file."
    )


def _no_options(spec: str, options: dict[str, Any], what: str) -> None:
    if options:
        raise ValueError(f"{spec} is {what} and takes no dataset options; got {sorted(options)}. Remove them.")
