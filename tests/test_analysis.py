"""The asymmetry inspector and run reports: numbers by hand, files, and the page in a real browser."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
import torch

from rlrt.analysis import candidate_shift, token_asymmetry
from rlrt.analysis.inspect_run import InspectArguments, write_inspection
from rlrt.analysis.report import ReportArguments, load_run, markdown_summary, mean_std, summary_rows, write_report


def test_token_asymmetry_by_hand():
    student = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]))
    teacher = torch.log(torch.tensor([[0.25, 0.5, 0.25], [0.1, 0.1, 0.8]]))
    out = token_asymmetry(student, teacher, torch.tensor([0, 2]), top_k=2)
    torch.testing.assert_close(out["log_ratio"], torch.tensor([math.log(2), 0.0]))
    kl0 = 0.5 * math.log(2) + 0.25 * math.log(0.5)
    torch.testing.assert_close(out["kl"], torch.tensor([kl0, 0.0]), atol=1e-6, rtol=1e-5)
    assert out["top_student_ids"].tolist() == [[0, 1], [2, 0]] or out["top_student_ids"][0, 0] == 0
    torch.testing.assert_close(out["top_teacher_probs"][0], torch.tensor([0.5, 0.25]))


def test_candidate_shift_by_hand():
    base = torch.log(torch.tensor([[[0.9, 0.0995, 0.0005], [0.5, 0.4995, 0.0005]]]))
    trained = torch.log(torch.tensor([[[0.1, 0.1, 0.8], [0.6, 0.3, 0.1]]]))
    assert candidate_shift(base, trained, torch.ones(1, 2)) == (1, 2)
    assert candidate_shift(base, trained, torch.tensor([[0, 1]])) == (0, 1)


class _Spans(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tokens = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "span" and "tok" in (attrs.get("class") or "").split():
            self.tokens.append(attrs)


@pytest.fixture(scope="module")
def inspected(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("inspect")
    args = InspectArguments(model=str(tiny_model_dir), dataset="addition:test", limit=1, num_samples=4,
                            max_new_tokens=6, teacher_context="answer", shaping="rlrt_all", output_dir=str(out))
    json_path, html_path = write_inspection(args)
    return json.loads(json_path.read_text()), html_path


@pytest.mark.slow
def test_inspect_json_numbers(inspected):
    payload, _ = inspected
    rollouts = payload["problems"][0]["rollouts"]
    assert len(rollouts) == 4
    for rollout in rollouts:
        assert rollout["has_teacher"]  # the gold answer is always available as context
        assert 0 < len(rollout["tokens"]) <= 6
        assert sum(t["critical"] for t in rollout["tokens"]) == min(3, len(rollout["tokens"]))
        for token in rollout["tokens"]:
            assert token["d"] == pytest.approx(token["logp_student"] - token["logp_teacher"], abs=1e-5)
            assert token["kl"] >= 0
            if not rollout["shaped"]:
                assert token["multiplier"] == 1.0
            if token["critical"]:
                assert len(token["top_student"]) == 5 and len(token["top_teacher"]) == 5


@pytest.mark.slow
def test_inspect_html_is_self_contained(inspected):
    _, html_path = inspected
    page = html_path.read_text()
    assert "http://" not in page and "https://" not in page and "<script src" not in page
    assert 'id="rlrt-data"' in page


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True, timeout=900)
        path = shutil.which("chromium")
    if path is None:
        pytest.skip("Chromium is not installed and `apt-get install chromium` is not possible on this machine")
    return path


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.slow
def test_inspect_page_in_a_real_browser(inspected, chromium, tmp_path):
    payload, html_path = inspected
    result = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                             "--virtual-time-budget=5000", "--dump-dom", html_path.resolve().as_uri()],
                            capture_output=True, text=True, timeout=120)
    dom = result.stdout
    assert 'data-ready="1"' in dom, result.stderr[-2000:]
    parser = _Spans()
    parser.feed(dom)
    tokens = [t for r in payload["problems"][0]["rollouts"] for t in r["tokens"]]
    assert len(parser.tokens) == len(tokens) > 0
    for span, token in zip(parser.tokens, tokens):
        assert float(span["data-d"]) == pytest.approx(token["d"], abs=1e-9)
        assert float(span["data-m"]) == pytest.approx(token["multiplier"], abs=1e-9)
        assert ("critical" in span["class"]) == token["critical"]
    assert "Problem 1" in dom


def _fake_run(path, shaping, rewards, heldout, entropy=1.0):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"train": {"model": "smollm2-135m"}, "rlrt": {"shaping": shaping}}))
    (path / "metrics.jsonl").write_text("".join(
        json.dumps({"step": i + 1, "loss": 0.0, "reward": r, "entropy": entropy, "completions/mean_length": 20.0,
                    "rlrt/weight_mean": 1.0 + 0.01 * i}) + "\n" for i, r in enumerate(rewards)))
    (path / "heldout.jsonl").write_text("".join(
        json.dumps({"step": s, "problems": 8, "avg@2": a, "pass@1": a, "pass@2": min(1.0, a + 0.1)}) + "\n"
        for s, a in heldout))


def test_mean_std_text():
    assert mean_std([]) == "" and mean_std([0.25]) == "25.0"
    assert mean_std([0.5, 0.75]) == "62.5 ± 17.7"
    assert mean_std([0.25, -0.125], signed=True) == "+6.2 ± 26.5" and mean_std([-0.094], signed=True) == "-9.4"


def test_finite_mean_text_skips_metrics_a_run_did_not_log():
    from rlrt.analysis.report import finite_mean

    assert finite_mean([0.5, float("nan"), 0.25], 3) == "0.375"  # the runs that logged it
    assert finite_mean([float("nan")], 1) == "—" and finite_mean([], 1) == "—"  # the reported "nan" cell (SDPO)


def test_report_table_names_the_step_of_each_heldout_cell(tmp_path):
    """A run without a step-0 evaluation (as under rlrt compare): its first held-out score is not the start's."""
    _fake_run(tmp_path / "a", "grpo", [0.2, 0.3], [(0, 0.25), (4, 0.5)])
    _fake_run(tmp_path / "b", "grpo", [0.2, 0.3], [(2, 0.5), (4, 0.7)])
    _fake_run(tmp_path / "c", "rlrt", [0.2, 0.3], [(2, 0.5), (4, 0.75)])
    runs = {name: load_run(tmp_path / name) for name in "abc"}
    rows = summary_rows({"grpo": [runs["a"], runs["b"]], "rlrt": [runs["c"]]}, {})
    assert rows[0]["heldout_first_step"] == [0, 2] and rows[1]["heldout_first_step"] == [2]
    table = markdown_summary(rows)
    assert "| variant | runs | steps | held-out first (step) | held-out last (step) |" in table
    assert "| grpo | 2 | 2 | 37.5 ± 17.7 (steps 0, 2) | 60.0 ± 14.1 (step 4) |" in table
    assert "| rlrt | 1 | 2 | 50.0 (step 2) | 75.0 (step 4) |" in table
    assert "not the starting model's score" in table


@pytest.mark.slow
def test_report_numbers_and_plots(tmp_path):
    _fake_run(tmp_path / "g1", "grpo", [0.2, 0.3], [(0, 0.25), (2, 0.5)])
    _fake_run(tmp_path / "g2", "grpo", [0.2, 0.5], [(0, 0.25), (2, 0.7)])
    _fake_run(tmp_path / "r1", "rlrt", [0.4, 0.6], [(0, 0.25), (2, 0.75)], entropy=2.0)
    paths = write_report(ReportArguments(runs=[str(tmp_path / n) for n in ("g1", "g2", "r1")],
                                       output_dir=str(tmp_path / "out"), skip_shift=True))
    summary = json.loads(paths["summary"].read_text())
    groups = {g["label"]: g for g in summary["groups"]}
    assert groups["grpo"]["runs"] == 2 and groups["grpo"]["heldout_last"] == [0.5, 0.7]
    assert groups["rlrt"]["reward_last5"] == [0.5] and groups["rlrt"]["entropy_last5"] == [2.0]
    report = paths["report"].read_text()
    assert "| held-out first (step) | held-out last (step) |" in report
    assert "| grpo | 2 | 2 | 25.0 ± 0.0 (step 0) | 60.0 ± 14.1 (step 2) |" in report
    assert "| rlrt | 1 | 2 | 25.0 (step 0) | 75.0 (step 2) |" in report
    for name in ("overview.png", "reward.png", "heldout.png", "entropy.png", "rlrt_weight_mean.png"):
        data = (tmp_path / "out" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    with pytest.raises(ValueError, match="one label per run"):
        write_report(ReportArguments(runs=[str(tmp_path / "g1")], labels=["a", "b"], skip_shift=True,
                                   output_dir=str(tmp_path / "o2")))
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        write_report(ReportArguments(runs=[str(tmp_path)], skip_shift=True, output_dir=str(tmp_path / "o3")))


def test_report_never_overwrites_another_commands_summary_or_a_report_of_other_runs(tmp_path, monkeypatch):
    """A run folder's own summary.json (or a report of other runs, whose candidate-set shift cost sampling) is not
    overwritten by ``rlrt report``; a rerun of the same report may replace it, and ``rlrt compare`` (which owns its
    report folder) replaces it with ``replace=True``."""
    import rlrt.analysis.report as report

    monkeypatch.setattr(report, "plot_metrics", lambda groups, out: [out / "overview.png"])  # no matplotlib here
    _fake_run(tmp_path / "g1", "grpo", [0.2, 0.3], [(0, 0.25), (2, 0.5)])
    _fake_run(tmp_path / "r1", "rlrt", [0.4, 0.6], [(0, 0.25), (2, 0.75)])
    (tmp_path / "g1" / "summary.json").write_text('{"steps": 2}')
    with pytest.raises(ValueError, match=r"g1 holds the output of `rlrt train` \(metrics.jsonl\)"):
        write_report(ReportArguments(runs=[str(tmp_path / "g1")], skip_shift=True, output_dir=str(tmp_path / "g1")))
    assert json.loads((tmp_path / "g1" / "summary.json").read_text()) == {"steps": 2}
    assert not (tmp_path / "g1" / "report.md").exists()
    (tmp_path / "other").mkdir()  # another tool's summary.json
    (tmp_path / "other" / "summary.json").write_text('{"steps": 2}')
    with pytest.raises(ValueError, match=r"other/summary.json exists and is not a result of this command"):
        write_report(ReportArguments(runs=[str(tmp_path / "g1")], skip_shift=True, output_dir=str(tmp_path / "other")))
    assert (tmp_path / "other" / "summary.json").read_text() == '{"steps": 2}'

    both = ReportArguments(runs=[str(tmp_path / "g1"), str(tmp_path / "r1")], skip_shift=True,
                           output_dir=str(tmp_path / "out"))
    write_report(both)
    write_report(both)  # the same report again: replaced
    saved = (tmp_path / "out" / "summary.json").read_text()
    assert json.loads(saved)["arguments"]["runs"] == both.runs
    one = ReportArguments(runs=[str(tmp_path / "g1")], skip_shift=True, output_dir=str(tmp_path / "out"))
    with pytest.raises(ValueError, match=r"other arguments \(runs \[.*\] there, \[.*\] here\): choose another"):
        write_report(one)
    assert (tmp_path / "out" / "summary.json").read_text() == saved
    write_report(one, replace=True)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["arguments"]["runs"] == one.runs
    # The same runs written another way are the same report; a report from before arguments were recorded is kept.
    write_report(ReportArguments(runs=[str(tmp_path / "g1") + "/"], skip_shift=True, output_dir=str(tmp_path / "out")))
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "summary.json").write_text('{"groups": [], "candidate_shift": {}}')
    with pytest.raises(ValueError, match=r"old/summary.json is an rlrt report made before reports recorded their"):
        write_report(one.__class__(runs=one.runs, skip_shift=True, output_dir=str(tmp_path / "old")))
    assert (tmp_path / "old" / "summary.json").read_text() == '{"groups": [], "candidate_shift": {}}'


@pytest.mark.slow
def test_each_variant_keeps_its_color_in_every_panel(tmp_path, monkeypatch):
    """grpo has no rlrt/* metrics: the variants after it must not change color in those panels."""
    from matplotlib.axes import Axes

    seen: dict[str, set] = {}
    real_plot = Axes.plot

    def recording_plot(self, *args, **kwargs):
        lines = real_plot(self, *args, **kwargs)
        seen.setdefault(kwargs["label"].split(" (")[0], set()).add(lines[0].get_color())
        return lines

    monkeypatch.setattr(Axes, "plot", recording_plot)
    _fake_run(tmp_path / "g", "grpo", [0.2, 0.3], [(0, 0.25), (2, 0.5)])
    (tmp_path / "g" / "metrics.jsonl").write_text("".join(json.dumps(
        {"step": i + 1, "reward": 0.5, "entropy": 1.0, "completions/mean_length": 20.0}) + "\n" for i in range(2)))
    _fake_run(tmp_path / "r", "rlrt", [0.4, 0.6], [(0, 0.25), (2, 0.75)])
    _fake_run(tmp_path / "s", "rlsd", [0.4, 0.6], [(0, 0.25), (2, 0.75)])
    write_report(ReportArguments(runs=[str(tmp_path / n) for n in "grs"], output_dir=str(tmp_path / "out"),
                               skip_shift=True))
    assert set(seen) == {"grpo", "rlrt", "rlsd"}
    assert all(len(colors) == 1 for colors in seen.values()), seen
    assert len({next(iter(c)) for c in seen.values()}) == 3


@pytest.mark.slow
def test_candidate_shift_on_a_trained_run(tmp_path, tiny_model_dir):
    from rlrt.cli import main

    run = tmp_path / "run"
    assert main(["train", "--model", str(tiny_model_dir), "--max_steps", "2", "--output_dir", str(run),
                 "--reward_funcs", "rlrt.rewards:parity_reward", "--learning_rate", "0.05",
                 "--per_device_train_batch_size", "8",
                 "--num_generations", "4", "--max_completion_length", "8", "--eval_limit", "4", "--bf16", "false",
                 "--disable_tqdm", "true"]) == 0
    paths = write_report(ReportArguments(runs=[str(run)], output_dir=str(tmp_path / "out"), shift_contexts=4,
                                       shift_max_new_tokens=8, shift_threshold=1.0))
    shift = json.loads(paths["summary"].read_text())["candidate_shift"][str(run)]
    # Threshold 1.0: every counted position qualifies, so the count is exactly the number of positions.
    assert shift["positions"] > 0 and shift["promoted"] == shift["positions"] and shift["rate"] == 1.0
