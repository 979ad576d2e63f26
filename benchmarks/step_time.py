"""Seconds per training step on the default run, split into generation, scoring and update, per variant.

    python benchmarks/step_time.py [--steps 3] [--shapings grpo rlrt] [--out benchmarks/results/step_time.json]

Each variant trains the embedded model (or ``--model``) for ``--steps`` steps with the `rlrt train` defaults
(``--batch``/``--generations``/``--completion`` override them), in this one process, one after the other; the
first step of each is a warm-up and is excluded. ``--reward parity`` replaces the verifier by "even completion
length is correct", so a random-weight model of a real size still sends about half its rollouts to the teacher.
Reported per step:

* generation -- TRL's ``_generate`` (sampling the rollouts);
* rewards -- the reward functions;
* student scoring -- forward passes of the policy outside the loss (old/ref log-probs; zero on-policy);
* teacher scoring -- context building and the teacher's no-grad forward (``_teacher_fields``);
* update -- the loss forward, backward and optimizer step (the rest of the step).

The ratio RLRT/GRPO of total step time, measured in the same run, is the number to compare across machines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from rlrt.config import CPU_RUN_DEFAULTS


def timed_trainer_class():
    from rlrt.trainer import RLRTTrainer

    class TimedTrainer(RLRTTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.timings: list[dict[str, float]] = []
            self._current: dict[str, float] = defaultdict(float)
            self._in_loss = False

        def _timed(self, key, fn, *args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._current[key] += time.perf_counter() - start

        def _generate(self, prompts):
            return self._timed("generation", super()._generate, prompts)

        def _calculate_rewards(self, *args):
            return self._timed("rewards", super()._calculate_rewards, *args)

        def _teacher_fields(self, *args):
            start = time.perf_counter()
            try:
                return super()._teacher_fields(*args)
            finally:
                self._current["teacher_scoring"] += time.perf_counter() - start
                self._current["_teacher_inner"] = 1.0

        def _generate_and_score_completions(self, inputs):
            start = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            total = time.perf_counter() - start
            c = self._current
            c["student_scoring"] += total - c["generation"] - c["rewards"] - c["teacher_scoring"]
            return out

        def training_step(self, model, inputs, num_items_in_batch):
            start = time.perf_counter()
            out = super().training_step(model, inputs, num_items_in_batch)
            self._current["step_total"] += time.perf_counter() - start
            return out

        def _maybe_log_save_evaluate(self, *args, **kwargs):
            # Called once per optimizer step, after the update: close this step's record.
            start = time.perf_counter()
            result = super()._maybe_log_save_evaluate(*args, **kwargs)
            c = dict(self._current)
            c.pop("_teacher_inner", None)
            if "step_total" not in c:  # an extra call at the end of an epoch: no step happened
                self._current["logging"] += time.perf_counter() - start
                return result
            c["update"] = c["step_total"] - c.get("generation", 0) - c.get("rewards", 0) - c.get(
                "student_scoring", 0) - c.get("teacher_scoring", 0)
            self.timings.append(c)
            self._current = defaultdict(float)
            self._current["logging"] = time.perf_counter() - start
            return result

    return TimedTrainer


def measure(shaping: str, steps: int, overrides: dict, model: str | None = None, reward: str = "accuracy") -> dict:
    from rlrt.config import RLRTConfig
    from rlrt.data.registry import load_task
    from rlrt.models import load_tokenizer, resolve_model
    from rlrt.rewards import accuracy_reward, parity_reward

    path = resolve_model(model)
    tokenizer = load_tokenizer(path)
    values = {**CPU_RUN_DEFAULTS, **overrides, "max_steps": steps, "shaping": shaping, "disable_tqdm": True,
              "output_dir": f"/tmp/rlrt-bench-{shaping}"}
    config = RLRTConfig(**values)
    reward_func = parity_reward if reward == "parity" else accuracy_reward
    if reward == "accuracy":
        from rlrt.rewards.math import default_verifier

        default_verifier().warm_up()  # the worker's one-off start-up (seconds) is not a per-step cost
    trainer = timed_trainer_class()(model=path, reward_funcs=[reward_func], args=config,
                                    train_dataset=load_task("addition", seed=0), processing_class=tokenizer)
    trainer.train()
    measured = trainer.timings[1:] or trainer.timings
    keys = ["generation", "rewards", "student_scoring", "teacher_scoring", "update", "step_total"]
    return {k: round(sum(t.get(k, 0.0) for t in measured) / len(measured), 3) for k in keys} | {
        "steps_measured": len(measured)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--shapings", nargs="+", default=["grpo", "rlrt"])
    parser.add_argument("--bf16", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--model", default=None, help="Model folder; default: the embedded SmolLM2-135M.")
    parser.add_argument("--reward", choices=["accuracy", "parity"], default="accuracy")
    parser.add_argument("--batch", type=int, default=None, help="per_device_train_batch_size (completions).")
    parser.add_argument("--generations", type=int, default=None, help="num_generations (G).")
    parser.add_argument("--completion", type=int, default=None, help="max_completion_length (tokens).")
    parser.add_argument("--out", default="benchmarks/results/step_time.json")
    args = parser.parse_args(argv)
    overrides = {} if args.bf16 == "auto" else {"bf16": args.bf16 == "on"}
    for key, value in (("per_device_train_batch_size", args.batch), ("num_generations", args.generations),
                       ("max_completion_length", args.completion)):
        if value is not None:
            overrides[key] = value
    results = {s: measure(s, args.steps, overrides, args.model, args.reward) for s in args.shapings}
    if "grpo" in results:
        base = results["grpo"]["step_total"]
        for r in results.values():
            r["ratio_to_grpo"] = round(r["step_total"] / base, 3)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import torch

    settings = {**CPU_RUN_DEFAULTS, **overrides, "max_steps": args.steps, "steps_measured": "all but the first",
                "model": args.model or "smollm2-135m (embedded)", "reward": args.reward,
                "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
    payload = {"settings": settings, "seconds_per_step": results}
    out.write_text(json.dumps(payload, indent=2))
    print(json.dumps(payload["seconds_per_step"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
