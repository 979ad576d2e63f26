"""Held-out sampling with and without the shared prompt prefix computed once (rlrt.evaluation.sampling).

    OMP_NUM_THREADS=2 python benchmarks/eval_prefix_sharing.py [--repeats 2] [--out benchmarks/results/...json]

On the embedded SmolLM2-135M and the built-in ``chain`` held-out prompts (109 prompt tokens, 98 of them a system
prompt and worked example shared by every prompt), in the two shapes evaluation uses: 2 prompts x 32 samples (the
final evaluation) and 16 prompts x 4 samples (the intermediate ones), 48 new tokens, temperature 1.0, bf16 autocast
where the CPU supports it. The two paths alternate, ``--repeats`` times each, in one process; the result is the
ratio of their seconds per sequence measured in this one run. A greedy fp32 pass on 8 prompts checks that both
paths produce the same tokens. ``load_average`` is recorded: other work on the machine changes both paths' times.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/eval_prefix_sharing.json")
    args = parser.parse_args()

    from rlrt.data.registry import load_task
    from rlrt.evaluation.sampling import SamplingConfig, sample_completion_ids
    from rlrt.models import DEFAULT_MODEL, load_model, load_tokenizer, resolve_model

    path = resolve_model(DEFAULT_MODEL)
    tokenizer, model = load_tokenizer(path), load_model(path).eval()
    prompts = load_task("chain:test")["prompt"]

    model.float()
    greedy = SamplingConfig(max_new_tokens=48, temperature=0.0, batch_size=16, bf16=False)
    same = (sample_completion_ids(model, tokenizer, prompts[:8], 2, greedy)
            == sample_completion_ids(model, tokenizer, prompts[:8], 2, greedy, share_prefix=False))

    shapes = {"2 prompts x 32 samples": (prompts[:2], 32), "16 prompts x 4 samples": (prompts[2:18], 4)}
    sampling = SamplingConfig(max_new_tokens=48, temperature=1.0, batch_size=64)
    seconds = {shape: {"shared": [], "plain": []} for shape in shapes}
    for repeat in range(args.repeats):
        for shape, (chunk, n) in shapes.items():
            for mode in ("shared", "plain") if repeat % 2 == 0 else ("plain", "shared"):
                start = time.perf_counter()
                sample_completion_ids(model, tokenizer, chunk, n, sampling, share_prefix=mode == "shared")
                seconds[shape][mode].append((time.perf_counter() - start) / (len(chunk) * n))
    result = {
        "model": DEFAULT_MODEL, "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg(),
        "greedy_fp32_same_tokens": same, "seconds_per_sequence": seconds,
        "plain_over_shared": {shape: sum(s["plain"]) / sum(s["shared"]) for shape, s in seconds.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
