"""Sampled accuracy of the embedded SmolLM2-135M on the built-in task (the 15-60 % band check).

    python benchmarks/default_task_accuracy.py [--problems 32] [--samples 4] [--split train]

Writes benchmarks/results/default_task_accuracy.json: accuracy with \\boxed{} answers only
(``answer_format="boxed"``) and with the default extraction (``"any"``: math-verify's), at temperature 1.0 and
48 new tokens (the training settings).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--split", default="train")
    parser.add_argument("--out", default="benchmarks/results/default_task_accuracy.json")
    args = parser.parse_args(argv)

    from rlrt.data import addition_task
    from rlrt.evaluation.sampling import SamplingConfig, sample_completions
    from rlrt.models import load_model, load_tokenizer, resolve_model
    from rlrt.rewards import MathRewardConfig, MathVerifier, grade_batch

    path = resolve_model(None)
    model, tokenizer = load_model(path), load_tokenizer(path)
    dataset = addition_task(args.split, limit=args.problems)
    sampling = SamplingConfig(max_new_tokens=48, temperature=1.0, batch_size=64, seed=0)
    completions = sample_completions(model, tokenizer, dataset["prompt"], args.samples, sampling)
    verifier = MathVerifier()
    result = {"problems": len(dataset), "samples": args.samples, "split": args.split, "sampling": sampling.to_dict()}
    for name, config in (("boxed_only", MathRewardConfig(answer_format="boxed")), ("any", MathRewardConfig())):
        scores = [s for gold, samples in zip(dataset["answer"], completions)
                  for s in grade_batch(samples, [gold] * len(samples), config, verifier)]
        result[f"accuracy_{name}"] = sum(bool(s) for s in scores) / len(scores)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
