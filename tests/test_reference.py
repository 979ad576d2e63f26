"""Reference match: the package against an independent float64 per-token loop written from the method's definition
(docs/method.md sections 1-5), on random batches, for every variant, to 1e-10.

Nothing below the "reference" line calls rlrt: the variants table, the group advantages, the gate, the sibling
rule, D, w, the clip and the multiplier are spelled out again from the definition, one token at a time.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from rlrt import RLRTConfig
from rlrt.algorithms import group_advantages
from rlrt.step import Rollouts, choose_teacher_rows, shape_rollouts

# ------------------------------------------------------------------------------------------------ reference

# name -> (direction of w on shaped rows: +1 = (P_S/P_T)^sign(A), -1 = (P_T/P_S)^sign(A); gated; default context)
VARIANT_TABLE = {
    "grpo": (0, False, None),
    "rlrt": (+1, True, "sibling"),
    "rlrt_all": (+1, False, "sibling"),
    "teacher_up": (-1, True, "sibling"),
    "rlsd": (-1, False, "reference"),
}


def ref_advantages(rewards: list[float], group: int, eps: float = 1e-4) -> list[float]:
    """A_k = (r_k - mean(r)) / (std(r) + eps) within each group; std with Bessel's correction (TRL's)."""
    out = []
    for start in range(0, len(rewards), group):
        r = rewards[start : start + group]
        mean = sum(r) / group
        std = math.sqrt(sum((x - mean) ** 2 for x in r) / (group - 1))
        out.extend((x - mean) / (std + eps) for x in r)
    return out


def ref_has_context(k: int, rewards: list[float], group: int, source: str, fallback: str | None,
                    references: list[str | None], answers: list[str | None]) -> bool:
    """Section 4: a *different* correct rollout of the group; else the fallback; or the dataset column."""
    if source == "sibling":
        start = k - k % group
        if any(rewards[j] == 1.0 for j in range(start, start + group) if j != k):
            return True
        source = fallback
    if source == "reference":
        return references[k] not in (None, "")
    if source == "answer":
        return answers[k] not in (None, "")
    return False


def ref_step(rewards, student, teacher, mask, references, answers, group, variant, lam, eps_w, clamp, source,
             fallback, lam_decay, step):
    """Token advantages A_k,t (nested lists of float64) and the per-token multipliers, one token at a time."""
    direction, gated, _ = VARIANT_TABLE[variant]
    if lam_decay:
        lam = lam * max(0.0, 1.0 - step / lam_decay)
    adv = ref_advantages(rewards, group)
    token_adv, multipliers, shaped_rows = [], [], []
    for k in range(len(rewards)):
        a = adv[k]
        has_tokens = any(mask[k])
        shaped = (direction != 0 and (rewards[k] == 1.0 or not gated) and a != 0.0 and has_tokens
                  and ref_has_context(k, rewards, group, source, fallback, references, answers))
        shaped_rows.append(shaped)
        row_adv, row_m = [], []
        for t in range(len(mask[k])):
            m = 1.0
            if shaped and mask[k][t]:
                d = min(max(student[k][t] - teacher[k][t], -clamp), clamp)
                sign = (a > 0) - (a < 0)
                w = math.exp(direction * sign * d)
                m = (1.0 - lam) + lam * min(max(w, 1.0 - eps_w), 1.0 + eps_w)
            row_adv.append(a * m)
            row_m.append(m)
        token_adv.append(row_adv)
        multipliers.append(row_m)
    return adv, token_adv, multipliers, shaped_rows, lam


# ------------------------------------------------------------------------------------------------ comparison


def random_case(seed: int, variant: str):
    rng = random.Random(seed)
    group = rng.choice([2, 3, 4, 8])
    groups = rng.randint(1, 4)
    n, width = group * groups, rng.randint(1, 9)
    rewards = [float(rng.random() < rng.choice([0.2, 0.5, 0.8])) for _ in range(n)]
    lengths = [rng.choice([0, rng.randint(1, width), width]) for _ in range(n)]  # some rows all masked
    mask = [[int(t < lengths[k]) for t in range(width)] for k in range(n)]
    # log-probs in (-12, 0], some far apart so the clamp and both clip bounds are reached
    student = [[-rng.expovariate(0.5) for _ in range(width)] for _ in range(n)]
    teacher = [[-rng.expovariate(rng.choice([0.1, 0.5, 3.0])) for _ in range(width)] for _ in range(n)]
    references = [rng.choice([None, "ref solution", ""]) if rng.random() < 0.3 else "ref" for _ in range(n)]
    answers = [rng.choice([None, "5"]) for _ in range(n)]
    source = rng.choice(["sibling", "reference", "answer"]) if variant != "grpo" else "sibling"
    fallback = rng.choice([None, "reference", "answer"]) if source == "sibling" else None
    options = dict(
        shaping=variant, shaping_lambda=rng.choice([0.0, 0.5, 1.0, rng.random()]),
        shaping_eps_w=rng.choice([1.0, 0.5, 0.2, rng.uniform(0.01, 2.0)]),
        log_ratio_clamp=rng.choice([20.0, 0.3, rng.uniform(0.05, 5.0)]),
        teacher_context=source, teacher_context_fallback=fallback,
        shaping_lambda_decay_steps=rng.choice([0, 10, 50]), seed=rng.randint(0, 99),
    )
    return dict(group=group, rewards=rewards, mask=mask, student=student, teacher=teacher, references=references,
                answers=answers, options=options, step=rng.randint(0, 60))


@pytest.mark.parametrize("variant", list(VARIANT_TABLE))
@pytest.mark.parametrize("seed", range(25))
def test_package_matches_the_float64_reference(variant, seed):
    case = random_case(seed * 7919 + len(variant), variant)
    group, options = case["group"], case["options"]
    config = RLRTConfig(output_dir="unused", report_to="none", bf16=False, num_generations=group,
                        per_device_train_batch_size=len(case["rewards"]), **options)
    f64 = dict(dtype=torch.float64)
    rewards = torch.tensor(case["rewards"], **f64)
    advantages = group_advantages(rewards, group)
    mask = torch.tensor(case["mask"])
    student, teacher = torch.tensor(case["student"], **f64), torch.tensor(case["teacher"], **f64)
    rollouts = Rollouts(
        prompts=["p"] * len(rewards), completion_ids=torch.zeros_like(mask), completion_mask=mask,
        advantages=advantages, rewards=rewards, completion_texts=[f"c{k}" for k in range(len(rewards))],
        group_size=group, references=case["references"], answers=case["answers"],
    )
    rows = choose_teacher_rows(rollouts, config, case["step"])
    shaping, lam = shape_rollouts(advantages, student, teacher, rows.correct, rows.rows, mask, config, case["step"])

    ref_adv, ref_tokens, ref_m, ref_shaped, ref_lam = ref_step(
        case["rewards"], case["student"], case["teacher"], case["mask"], case["references"], case["answers"], group,
        variant, options["shaping_lambda"], options["shaping_eps_w"], options["log_ratio_clamp"],
        options["teacher_context"], options["teacher_context_fallback"], options["shaping_lambda_decay_steps"],
        case["step"],
    )
    torch.testing.assert_close(advantages, torch.tensor(ref_adv, **f64), atol=1e-10, rtol=0)
    assert shaping.shaped.tolist() == ref_shaped
    assert rows.rows.tolist() == ref_shaped  # the teacher scores exactly the rows the reference shapes
    assert shaping.token_advantages.dtype == torch.float64
    torch.testing.assert_close(shaping.token_advantages, torch.tensor(ref_tokens, **f64), atol=1e-10, rtol=0)
    torch.testing.assert_close(shaping.multiplier, torch.tensor(ref_m, **f64), atol=1e-10, rtol=0)

    # The logged statistics, from the same reference tokens.
    shaped_tokens = [(k, t) for k in range(len(ref_m)) for t in range(len(ref_m[k]))
                     if ref_shaped[k] and case["mask"][k][t]]
    stats = shaping.stats
    assert stats["shaped_frac"] == (float(sum(ref_shaped)), float(len(ref_shaped)))
    assert lam == pytest.approx(ref_lam, abs=1e-12)
    if variant == "grpo" or not shaped_tokens:
        assert stats["multiplier_mean"][1] == 0.0
        return
    n = len(shaped_tokens)
    ms = [ref_m[k][t] for k, t in shaped_tokens]
    ds = [min(max(case["student"][k][t] - case["teacher"][k][t], -options["log_ratio_clamp"]),
              options["log_ratio_clamp"]) for k, t in shaped_tokens]
    assert stats["multiplier_mean"][1] == n
    assert stats["multiplier_mean"][0] / n == pytest.approx(sum(ms) / n, abs=1e-10)
    assert stats["multiplier_min"][0] == pytest.approx(min(ms), abs=1e-10)
    assert stats["multiplier_max"][0] == pytest.approx(max(ms), abs=1e-10)
    assert stats["log_ratio_mean"][0] / n == pytest.approx(sum(ds) / n, abs=1e-10)
    assert stats["self_driven_frac"][0] == sum(d > 0 for d in ds)


def test_reference_cases_reach_the_clamp_and_both_clip_bounds():
    """The random cases are not all in the easy middle: the clamp and both clip bounds are exercised."""
    clamped = low = high = 0
    for seed in range(25):
        for variant in ("rlrt", "rlsd"):
            case = random_case(seed * 7919 + len(variant), variant)
            o = case["options"]
            for k, row in enumerate(case["mask"]):
                for t, on in enumerate(row):
                    if not on:
                        continue
                    d = case["student"][k][t] - case["teacher"][k][t]
                    clamped += abs(d) > o["log_ratio_clamp"]
                    low += math.exp(-abs(d)) < 1 - o["shaping_eps_w"]
                    high += math.exp(abs(d)) > 1 + o["shaping_eps_w"]
    assert clamped > 0 and low > 0 and high > 0
