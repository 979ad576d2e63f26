"""benchmarks/reproduce.py is a thin caller of `rlrt compare`: its arguments map onto a comparison of the five
variants at the first experiment's sizing (the pipeline itself is tested end to end in test_compare.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce.py"


def load_script():
    spec = importlib.util.spec_from_file_location("reproduce", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reproduction_is_the_five_variant_comparison(tmp_path):
    from rlrt.compare import plan_runs

    reproduce = load_script()
    args = reproduce.compare_arguments(["--out", str(tmp_path), "--model", "m"])
    plan = plan_runs(args)
    assert [r.name for r in plan[:5]] == [f"{v}-s0" for v in reproduce.VARIANTS] and len(plan) == 15
    for run in plan:
        assert run.flags["shaping"] == run.arm and run.flags["model"] == "m"
        assert run.flags["max_steps"] == 60 and run.flags["eval_limit"] == 32 and run.flags["eval_samples"] == 4
        assert run.flags["per_device_train_batch_size"] % run.flags["num_generations"] == 0

    quick = reproduce.compare_arguments(["--quick", "--out", str(tmp_path), "--report-only", "--variants", "grpo"])
    assert quick.quick and quick.report_only and quick.seeds == [0]
    assert [r.flags["max_steps"] for r in plan_runs(quick)] == [2]
