"""CUDA paths, skipped on machines without a GPU: bf16 training, teacher log-probs against CPU, and `rlrt train`
under the example accelerate configs (ZeRO-2, ZeRO-3, FSDP) in one process, and resuming from their sharded
checkpoints.

On a GPU machine: ``pytest tests/test_gpu.py``. DeepSpeed cases are skipped when deepspeed is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlrt.teacher import model_logps_fn
from training_helpers import make_config, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TESTS = Path(__file__).parent
REPO = TESTS.parent


def test_rlrt_trains_on_cuda_in_bf16(tmp_path, tiny_model_dir, tokenizer, dataset):
    trainer, changed, _ = train(tiny_model_dir, tokenizer, dataset,
                                make_config(tmp_path, shaping="rlrt", bf16=True, max_steps=3))
    assert next(trainer.model.parameters()).is_cuda
    assert changed > 0
    steps = [e for e in trainer.state.log_history if "rlrt/teacher_frac" in e]
    assert len(steps) == 3
    assert all(math.isfinite(e["loss"]) for e in steps)
    shaped = [e for e in steps if e["rlrt/shaped_frac"] > 0]  # weight statistics exist only where rows were shaped
    assert shaped and all(math.isfinite(e["rlrt/weight_mean"]) and e["rlrt/weight_min"] > 0 for e in shaped)


def test_teacher_logps_on_cuda_match_cpu(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (5, 40), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, :7] = 0  # a left-padded row
    with torch.no_grad():
        on_cpu = model_logps_fn(model)(ids, mask, 12, 2)
        on_gpu = model_logps_fn(model.cuda())(ids.cuda(), mask.cuda(), 12, 2).cpu()
    assert on_cpu.shape == (5, 12)
    torch.testing.assert_close(on_gpu, on_cpu, atol=2e-4, rtol=1e-4)


def _launch_train(name: str, model_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`rlrt train` under ``examples/accelerate/<name>.yaml`` in one process; ``extra`` flags override."""
    if name.startswith("zero") and importlib.util.find_spec("deepspeed") is None:
        pytest.skip("deepspeed is not installed")
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "examples" / "accelerate" / f"{name}.yaml"),
        "--num_processes", "1", "-m", "rlrt", "train", "--model", str(model_dir),
        "--reward_funcs", "rlrt.rewards:parity_reward", "--shaping", "rlrt", "--max_steps", "2",
        "--per_device_train_batch_size", "16", "--num_generations", "4", "--max_completion_length", "16",
        "--learning_rate", "1e-3", "--eval_dataset", "none", "--output_dir", str(out), *extra,
    ]
    path = os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=path)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=out.parent)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:]
    return result


def _logged_steps(out: Path) -> list[dict]:
    entries = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [e for e in entries if "rlrt/teacher_frac" in e]


@pytest.mark.parametrize("name", ["zero2", "zero3", "fsdp"])
def test_rlrt_train_under_the_example_accelerate_configs(tmp_path, tiny_model_dir, name):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "run"
    _launch_train(name, tiny_model_dir, out)
    steps = _logged_steps(out)
    assert len(steps) == 2
    assert all(math.isfinite(e["loss"]) for e in steps)
    assert any(e["rlrt/teacher_frac"] > 0 for e in steps), "no correct rollout reached the teacher"

    initial = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    final = AutoModelForCausalLM.from_pretrained(out / "final", dtype=torch.float32)
    changed = [n for (n, a), b in zip(initial.named_parameters(), final.parameters()) if not torch.allclose(a, b)]
    assert changed, "the saved final model equals the initial one: training or the sharded save lost the update"


@pytest.mark.parametrize("name", ["zero3", "fsdp"])
def test_sharded_run_resumes_from_its_checkpoint(tmp_path, tiny_model_dir, name):
    out = tmp_path / "run"
    _launch_train(name, tiny_model_dir, out, "--save_strategy", "steps", "--save_steps", "1")
    assert (out / "checkpoint-2" / ".rlrt-complete").is_file()
    _launch_train(name, tiny_model_dir, out, "--save_strategy", "steps", "--save_steps", "1", "--max_steps", "3")
    assert [e["step"] for e in _logged_steps(out)] == [1, 2, 3]
    assert json.loads((out / "summary.json").read_text())["steps"] == 3
