"""The package's shape: layers import only downward, and the four commands are built alike."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from rlrt.cli import COMMANDS, main

SRC = Path(__file__).resolve().parents[1] / "src" / "rlrt"

# A module may import from a lower layer or from its own subpackage, never from its layer or above.
LAYERS = {
    "io": 0, "text": 0, "models": 0, "algorithms": 0, "reliability": 0, "provenance": 0,
    "data": 1, "teacher": 1, "rewards": 1, "parsing": 1,
    "config": 2, "evaluation": 2,
    "step": 3,
    "analysis": 4, "trainer": 4, "callbacks": 4,
    "baselines": 5,
    "run": 6,
    "cli": 7, "compare": 7,
    "__main__": 8, "__init__": 8,
}


def _rlrt_imports(path: Path) -> set[str]:
    """Top-level ``rlrt`` components a module imports, function-level imports included."""
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    package = list(parts if path.name == "__init__.py" else parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                target = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            else:
                target = (node.module or "").split(".")
            names = [target] if len(target) > 1 else [target + [a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        found.update(name[1] for name in names if name[0] == "rlrt" and len(name) > 1)
    return found


def _component(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("").parts
    return rel[0]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_from_a_layer_above_it(path):
    own = _component(path)
    assert own in LAYERS, f"{own} has no layer in tests/test_layout.py: add it"
    for imported in _rlrt_imports(path) - {own}:
        assert imported in LAYERS, f"{path.name} imports unknown rlrt.{imported}"
        assert LAYERS[imported] < LAYERS[own], f"{path.relative_to(SRC)} imports rlrt.{imported} from a layer above"


def test_analysis_does_not_import_the_training_job():
    for path in (SRC / "analysis").rglob("*.py"):
        assert not _rlrt_imports(path) & {"run", "trainer", "callbacks", "cli"}, path.name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_the_same_shape(name):
    module = importlib.import_module(COMMANDS[name])
    run = getattr(module, f"run_{name}")
    assert len(inspect.signature(run).parameters) == len(module.COMMAND_ARGUMENTS)
    assert all(hasattr(a, "__dataclass_fields__") for a in module.COMMAND_ARGUMENTS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_answers_help(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    shown = capsys.readouterr().out
    assert done.value.code == 0 and f"usage: rlrt {name}" in shown
    assert "--config FILE" in shown.split("options:")[1]  # read by TRL before argparse, so listed by hand
    assert shown.startswith(f"usage: rlrt {name} [-h] [--config FILE] [--")  # in the usage line too


def test_defaults_have_one_source():
    from rlrt.algorithms.shaping import LOG_RATIO_CLAMP
    from rlrt.analysis.inspect_run import InspectArguments
    from rlrt.config import CPU_RUN_DEFAULTS, RLRTConfig
    from rlrt.data.tasks import DEFAULT_EVAL_DATASET
    from rlrt.evaluation.evaluate import EvalArguments
    from rlrt.models import DEFAULT_MODEL
    from rlrt.run import COMMAND_DEFAULTS, TrainArguments
    from rlrt.teacher import DEFAULT_TEACHER_TEMPLATE

    assert COMMAND_DEFAULTS is CPU_RUN_DEFAULTS
    assert TrainArguments().model == EvalArguments().model[0] == InspectArguments().model == DEFAULT_MODEL
    assert TrainArguments().eval_dataset == EvalArguments().dataset[0] == InspectArguments().dataset
    assert InspectArguments().dataset == DEFAULT_EVAL_DATASET
    assert RLRTConfig.__dataclass_fields__["teacher_prompt_template"].default is DEFAULT_TEACHER_TEMPLATE
    assert RLRTConfig.__dataclass_fields__["log_ratio_clamp"].default == LOG_RATIO_CLAMP
    for path in SRC.rglob("*.py"):
        literals = {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)}
        if path.name not in ("models.py", "tasks.py"):
            assert not literals & {"smollm2-135m", "addition:test"}, f"{path.name} repeats a default"
