"""Two CPU processes (torchrun, gloo): groups, sibling contexts across ranks, advantages and metrics agree with
what one process computes from the same global data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlrt.teacher import choose_contexts

pytestmark = pytest.mark.slow  # a two-process torchrun training


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_rank_records(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("mp")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(free_port()),
         str(Path(__file__).with_name("multiprocess_probe.py")), str(out), str(tiny_model_dir)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_two_ranks_ran(two_rank_records):
    assert [r["world"] for r in two_rank_records] == [2, 2]
    assert all(len(r["records"]) == 2 for r in two_rank_records)


def test_groups_contexts_advantages_and_metrics_match_a_single_process(two_rank_records):
    group = 4
    cross_rank = 0
    for step in range(2):
        rank0, rank1 = (r["records"][step] for r in two_rank_records)
        # Both ranks see the same gathered completions and rewards.
        assert rank0["completions"] == rank1["completions"] and rank0["rewards"] == rank1["rewards"]
        prompts = rank0["prompts"] + rank1["prompts"]
        for g in range(0, len(prompts), group):
            assert len(set(prompts[g:g + group])) == 1, "a group's rollouts must share their prompt"
        assert rank0["rows"] + rank1["rows"] == list(range(len(prompts)))

        # Sibling contexts: the same as one process choosing over the whole batch.
        single = choose_contexts(range(len(prompts)), group, rank0["correct"], rank0["completions"], source="sibling",
                                 seed=rank0["seed"], step=rank0["step"])
        assert rank0["contexts"] + rank1["contexts"] == single
        for row, context in enumerate(single):
            if context is not None:
                donors = [j for j in range(row - row % group, row - row % group + group)
                          if j != row and rank0["correct"][j] and rank0["completions"][j] == context]
                assert donors
                cross_rank += all(d // 2 != row // 2 for d in donors)

        # Advantages: TRL's group formula on the gathered rewards, sliced back per rank.
        rewards = torch.tensor(rank0["rewards"]).view(-1, group)
        expected = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)).view(-1)
        torch.testing.assert_close(torch.tensor(rank0["advantages"] + rank1["advantages"]), expected)

        # Logged metric = the global fraction, identical on both ranks.
        frac = sum(c is not None for c in single) / len(single)
        assert rank0["context_frac"] == pytest.approx(frac) and rank1["context_frac"] == pytest.approx(frac)
    assert cross_rank > 0, "no teacher context came from the other rank"
    assert two_rank_records[0]["logged"] == two_rank_records[1]["logged"]
