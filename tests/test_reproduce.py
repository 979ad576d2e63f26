"""The reproduction pipeline end to end, in its quick form (no claim about which variant wins)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path


SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce.py"


def load_script():
    spec = importlib.util.spec_from_file_location("reproduce", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_reproduction_produces_the_table_and_resumes(tmp_path, tiny_model_dir, capsys):
    reproduce = load_script()
    out = tmp_path / "repro"
    args = ["--quick", "--out", str(out), "--model", str(tiny_model_dir), "--skip-shift"]
    assert reproduce.main(args) == 0
    results = (out / "results.md").read_text()
    assert "(5/5 runs finished)" in results
    for variant in reproduce.VARIANTS:
        assert f"| {variant} | 1 |" in results
        run = out / f"{variant}-s0"
        assert json.loads((run / "summary.json").read_text())["steps"] == 2
        assert json.loads((run / "config.json").read_text())["rlrt"]["shaping"] == variant
        assert not list(run.glob("checkpoint-*"))  # removed once a run is finished
    assert (out / "report" / "overview.png").is_file() and (out / "report" / "report.md").is_file()
    settings = json.loads((out / "settings.json").read_text())
    assert settings["steps"] == 2 and settings["seeds"] == [0]

    capsys.readouterr()
    assert reproduce.main(args) == 0  # everything finished: nothing is trained again
    assert capsys.readouterr().out.count("finished, skipped") == 5


def test_a_run_stopped_before_its_first_checkpoint_starts_over_and_keeps_its_logs(tmp_path):
    reproduce = load_script()
    out = tmp_path / "repro"
    partial = out / "rlrt-s1"
    partial.mkdir(parents=True)
    (partial / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    moved = reproduce.set_aside_unresumable(partial, out)
    assert moved is not None and moved.parent == out / "abandoned" and moved.name.startswith("rlrt-s1-")
    assert (moved / "metrics.jsonl").read_text() == '{"step": 1, "loss": 0.5}\n'
    assert not partial.exists()

    resumable = out / "rlrt-s2"
    (resumable / "checkpoint-15").mkdir(parents=True)
    (resumable / "metrics.jsonl").write_text("{}\n")
    (resumable / "checkpoint-15" / ".rlrt-complete").write_text("")
    assert reproduce.set_aside_unresumable(resumable, out) is None and resumable.exists()
    assert reproduce.set_aside_unresumable(out / "grpo-s0", out) is None  # never started


def test_results_table_numbers(tmp_path):
    reproduce = load_script()
    curves = {"grpo-s0": [0.25, 0.5, 0.75], "grpo-s1": [0.25, 0.5, 0.5], "rlrt-s0": [0.25, 0.75, 1.0],
              "rlrt-s1": [0.25, 0.25, 0.5]}
    for name, values in curves.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "heldout.jsonl").write_text("\n".join(
            json.dumps({"step": 15 * i, "avg@4": v, "pass@1": v, "pass@4": min(1.0, v + 0.25)})
            for i, v in enumerate(values)) + "\n")
    table = reproduce.results_table(tmp_path, [tmp_path / n for n in curves])
    assert "| grpo | 2 | 25.0 ± 0.0 | 62.5 ± 17.7 | 56.2 ± 8.8 | 87.5 ± 17.7 | s0 75.0, s1 50.0 | — | — |" in table
    assert "| rlrt | 2 | 25.0 ± 0.0 | 75.0 ± 35.4 | 62.5 ± 35.4 | 87.5 ± 17.7 | s0 100.0, s1 50.0 | s0 +25.0, s1 +0.0 | +6.2 ± 26.5 |" in table


def test_run_order():
    reproduce = load_script()
    variants = ["grpo", "rlrt", "rlsd"]
    assert reproduce.run_order(variants, [0, 1], []) == [("grpo", 0), ("rlrt", 0), ("rlsd", 0),
                                                          ("grpo", 1), ("rlrt", 1), ("rlsd", 1)]
    assert reproduce.run_order(variants, [0, 1], ["rlrt", "grpo"]) == [("grpo", 0), ("rlrt", 0), ("grpo", 1),
                                                                      ("rlrt", 1), ("rlsd", 0), ("rlsd", 1)]


def test_sizing_of_the_full_experiment():
    reproduce = load_script()
    full = reproduce.FULL
    assert len(full["seeds"]) >= 3 and full["steps"] >= 40
    assert full["batch"] % full["generations"] == 0
