"""How often each grader agrees with a careful human on real answer styles, and how fast rlrt grades a batch.

    python benchmarks/grading_agreement.py [--collection all|authored|audit] [--batch 300]

Two labelled collections of (style, gold, completion, expected) triples in the styles MATH / GSM8K / Minerva / AIME
/ DAPO-style models answer in, about half of them wrong, each reported on its own
(``benchmarks/results/grading_agreement.json`` and ``grading_agreement_audit.json``):

* ``authored`` -- ``benchmarks/data/grading_cases.py``, written by the author of the grader with issue 13's faults
  in mind (boxes, several boxes, "The answer is", Minerva's "Final Answer: ... I hope it is correct.", Markdown
  bold, math spans in prose, units, percent, decimal commas, digit groups, intervals, sets, equations, fractions
  against decimals, no answer);
* ``audit`` -- ``benchmarks/data/grading_cases_audit.py``, written independently to audit it (self-corrections,
  intermediate values equal to the gold, restated numbers after the answer, truncated and empty completions,
  multiple choice, GSM8K "####", degrees, money, matrices, ...); its first ``ROUND_ONE`` cases were written before
  the audit changed the grader and are also reported alone (``round_one``).

Graders compared:

* ``rlrt`` -- ``rlrt.rewards.accuracy_reward`` (math-verify's matches, chosen as in ``rlrt.rewards._verify_worker``);
* ``rlrt_boxed`` -- the strict format, ``MathRewardConfig(answer_format="boxed")``;
* ``rlrt_before_audit`` -- the grader before the audit (its worker read from git commit ``BEFORE_AUDIT``);
* ``rlrt_before`` -- rlrt's grader before issue 13 (read from git commit ``BEFORE``; skipped without git);
* ``trl`` -- ``trl.rewards.accuracy_reward`` with the gold in the ``solution`` column as the dataset has it;
* ``trl_dollar_gold`` -- the same with a bare gold wrapped in ``$...$`` (TRL parses its solution as text).

A ``None`` grade (gold unparseable) counts as "not correct". Reported per grader: agreement, false positives
(a wrong answer graded correct) and false negatives, each with its cases, ``None`` grades, and agreement per style;
false positives on generated wrong answers (each right completion with one number of its gold changed, everywhere);
then the seconds rlrt needs to grade ``--batch`` completions in one batched call (warm worker), the slowest single
item, and the worker's timeouts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
BEFORE = "59f8c667496a23987ed920ba8d0cc8bd4a764398"  # main just before issue 13's grading landed
BEFORE_AUDIT = "a06728b2d8d0d757f3cc870e4c3c909f1514a0f3"  # issue 13's grader, before the independent audit
COLLECTIONS = {"authored": ("grading_cases.py", "grading_agreement.json"),
               "audit": ("grading_cases_audit.py", "grading_agreement_audit.json")}


def load_collection(name: str):
    """``(cases, round_one)``: a collection's cases and how many of them were written before the audit."""
    spec = importlib.util.spec_from_file_location(f"grading_cases_{name}", HERE / "data" / COLLECTIONS[name][0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES, getattr(module, "ROUND_ONE", None)


def load_cases():
    return load_collection("authored")[0]


def git_show(commit: str, source: str) -> str:
    return subprocess.run(["git", "show", f"{commit}:{source}"], capture_output=True, text=True, check=True,
                          cwd=HERE.parent).stdout


def rlrt_grader(config):
    from rlrt.rewards import MathVerifier, make_accuracy_reward

    verifier = MathVerifier(config.timeout_seconds)
    verifier.warm_up()
    reward = make_accuracy_reward(config, verifier)
    return lambda golds, completions: reward(completions=completions, answer=golds), verifier


def rlrt_before_grader():
    """The pre-issue-13 grader, from git: its math.py and worker in a throw-away package."""
    root = Path(tempfile.mkdtemp(prefix="rlrt_before_"))
    package = root / "rlrt_before"
    (package / "rewards").mkdir(parents=True)
    files = {"text.py": "src/rlrt/text.py", "rewards/math.py": "src/rlrt/rewards/math.py",
             "rewards/_verify_worker.py": "src/rlrt/rewards/_verify_worker.py"}
    for target, source in files.items():
        (package / target).write_text(git_show(BEFORE, source))
    (package / "__init__.py").write_text("")
    (package / "rewards" / "__init__.py").write_text("")
    sys.path.insert(0, str(root))
    from rlrt_before.rewards import math as before

    from rlrt.rewards.math import worker_command

    verifier = before.MathVerifier()
    verifier.worker_command = worker_command(package / "rewards" / "_verify_worker.py")
    verifier.warm_up()
    reward = before.make_accuracy_reward(verifier=verifier)
    return lambda golds, completions: reward(completions=completions, answer=golds)


def rlrt_before_audit_grader():
    """The grader before the audit: today's parent side (unchanged by it) with the worker of ``BEFORE_AUDIT``."""
    from rlrt.rewards import MathRewardConfig, MathVerifier, make_accuracy_reward
    from rlrt.rewards.math import worker_command

    worker = Path(tempfile.mkdtemp(prefix="rlrt_before_audit_")) / "_verify_worker.py"
    worker.write_text(git_show(BEFORE_AUDIT, "src/rlrt/rewards/_verify_worker.py"))
    verifier = MathVerifier()
    verifier.worker_command = worker_command(worker)
    verifier.warm_up()
    reward = make_accuracy_reward(MathRewardConfig(), verifier)
    return lambda golds, completions: reward(completions=completions, answer=golds)


def trl_grader(dollar_gold: bool):
    import logging

    from trl.rewards import accuracy_reward

    logging.getLogger("math_verify").setLevel(logging.ERROR)

    def wrap(gold: str) -> str:
        return gold if not dollar_gold or "$" in gold else f"${gold}$"

    def grade(golds, completions):
        chats = [[{"role": "assistant", "content": c}] for c in completions]
        return accuracy_reward(chats, [wrap(g) for g in golds])

    return grade


def score(name, grades, cases) -> dict:
    by_style: dict[str, list[int]] = defaultdict(list)
    false_positives, false_negatives, nones = [], [], 0
    for grade, (style, gold, completion, expected) in zip(grades, cases, strict=True):
        nones += grade is None
        got = int(grade is not None and grade >= 1.0)
        by_style[style].append(int(got == expected))
        if got != expected:
            (false_positives if got else false_negatives).append({"style": style, "gold": gold,
                                                                  "completion": completion})
    agree = sum(sum(v) for v in by_style.values())
    return {
        "grader": name,
        "agreement": round(agree / len(cases), 4),
        "agree": agree,
        "false_positives": len(false_positives),
        "false_negatives": len(false_negatives),
        "none_grades": nones,
        "by_style": {style: f"{sum(v)}/{len(v)}" for style, v in sorted(by_style.items())},
        "false_positive_cases": false_positives,
        "false_negative_cases": false_negatives,
    }


def mutated_wrong_answers(cases) -> tuple[list[str], list[str]]:
    """Each right completion with one number of its gold answer changed (everywhere in it): all wrong."""
    import re

    golds, completions = [], []
    for _, gold, completion, expected in cases:
        for number in sorted(set(re.findall(r"\d+", gold))) if expected else ():
            changed = re.sub(rf"(?<!\d){number}(?!\d)", str(int(number) + 1), completion)
            if changed != completion:
                golds.append(gold)
                completions.append(changed)
    return golds, completions


def timing(cases, batch: int) -> dict:
    from rlrt.rewards import MathRewardConfig, MathVerifier, grade, grade_batch

    config = MathRewardConfig()
    started = time.perf_counter()
    verifier = MathVerifier(config.timeout_seconds)
    verifier.warm_up()
    startup = time.perf_counter() - started
    items = [cases[i % len(cases)] for i in range(batch)]
    # Distinct texts (a numbered preamble), so that no completion is served from a cache of an earlier one.
    completions = [f"Attempt {i}: let us work it out.\n{c[2]}" for i, c in enumerate(items)]
    golds = [c[1] for c in items]
    started = time.perf_counter()
    grade_batch(completions, golds, config, verifier)
    batch_seconds = time.perf_counter() - started
    slowest = 0.0
    for completion, gold in zip(completions, golds):
        started = time.perf_counter()
        grade(completion, gold, config, verifier)
        slowest = max(slowest, time.perf_counter() - started)
    return {"completions": batch, "batch_seconds": round(batch_seconds, 3), "worker_startup_seconds": round(startup, 3),
            "slowest_item_seconds": round(slowest, 4), "item_time_bound_seconds": config.timeout_seconds,
            "timeouts": verifier.stats["timeouts"], "worker_calls": verifier.stats["worker_calls"],
            "in_process": verifier.stats["fast_match"]}


def run_collection(name: str, graders: dict, batch: int, out: Path) -> dict:
    cases, round_one = load_collection(name)
    golds, completions = [c[1] for c in cases], [c[2] for c in cases]
    mutated_golds, mutated = mutated_wrong_answers(cases)
    results = []
    for grader, grade in graders.items():
        grades = grade(golds, completions)
        result = score(grader, grades, cases)
        if round_one:
            first = score(grader, grades[:round_one], cases[:round_one])
            result["round_one"] = {k: first[k] for k in ("agreement", "agree", "false_positives", "false_negatives")}
        mutated_grades = grade(mutated_golds, mutated)
        result["mutated_wrong_answers"] = len(mutated)
        result["mutated_false_positives"] = sum(g is not None and g >= 1.0 for g in mutated_grades)
        results.append(result)
    counts = Counter(expected for *_, expected in cases)
    payload = {"collection": name, "file": f"benchmarks/data/{COLLECTIONS[name][0]}", "cases": len(cases),
               "correct_cases": counts[1], "wrong_cases": counts[0], "round_one_cases": round_one,
               "graders": results, "timing": timing(cases, batch)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    print(f"\n{name}: {len(cases)} cases ({counts[0]} wrong answers) -> {out}")
    print(f"{'grader':<18} {'agreement':>9} {'false pos':>9} {'false neg':>9} {'None':>5} {'mutated FP':>10}"
          + ("  round one (agreement, FP)" if round_one else ""))
    for r in results:
        first = r.get("round_one")
        print(f"{r['grader']:<18} {100 * r['agreement']:>8.1f}% {r['false_positives']:>9} {r['false_negatives']:>9} "
              f"{r['none_grades']:>5} {r['mutated_false_positives']:>4}/{r['mutated_wrong_answers']}"
              + (f"  {100 * first['agreement']:.1f}%, {first['false_positives']}" if first else ""))
    print("timing:", json.dumps(payload["timing"]))
    return payload


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", choices=["all", *COLLECTIONS], default="all")
    parser.add_argument("--batch", type=int, default=300, help="Completions graded in the timing run.")
    parser.add_argument("--out_dir", default=str(HERE / "results"))
    args = parser.parse_args(argv)

    from rlrt.rewards import MathRewardConfig

    graders = {"rlrt": rlrt_grader(MathRewardConfig())[0],
               "rlrt_boxed": rlrt_grader(MathRewardConfig(answer_format="boxed"))[0]}
    for name, build in (("rlrt_before_audit", rlrt_before_audit_grader), ("rlrt_before", rlrt_before_grader)):
        try:
            graders[name] = build()
        except (subprocess.CalledProcessError, FileNotFoundError, ImportError) as err:
            print(f"{name} skipped: {err}", file=sys.stderr)
    graders["trl"] = trl_grader(dollar_gold=False)
    graders["trl_dollar_gold"] = trl_grader(dollar_gold=True)
    for name in COLLECTIONS if args.collection == "all" else [args.collection]:
        run_collection(name, graders, args.batch, Path(args.out_dir) / COLLECTIONS[name][1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
