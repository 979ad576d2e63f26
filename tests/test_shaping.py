"""The shaping math against hand-computed numbers and properties (docs/method.md sections 3 and 5)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlrt import shape_advantages
from rlrt.algorithms import (
    group_advantages,
    lambda_at_step,
    log_ratio,
    rows_needing_teacher,
    shaping_metrics,
    token_multiplier,
    token_weights,
)

LN = math.log

# Four rollouts, T = 4. D = log P_S - log P_T is set by putting log P_T = 0 and log P_S = D.
#   row 0: correct, A = +1,   D = [ln 2, ln 0.5, ln 3, pad]
#   row 1: wrong,   A = -0.5, D = [ln 2, ln 0.25, pad, pad]
#   row 2: wrong,   A = 0     (an all-equal group)
#   row 3: correct, A = +1,   no teacher context (a lone correct rollout)
ADV = torch.tensor([1.0, -0.5, 0.0, 1.0])
CORRECT = torch.tensor([True, False, False, True])
HAS_TEACHER = torch.tensor([True, True, True, False])
MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]])
STUDENT = torch.tensor(
    [[LN(2), LN(0.5), LN(3), 7.0], [LN(2), LN(0.25), 5.0, 5.0], [1.0, -1.0, 2.0, 0.5], [3.0, 3.0, 3.0, 3.0]]
)
TEACHER = torch.zeros(4, 4)


def shaped(mode, lam=0.5, eps_w=1.0):
    return shape_advantages(ADV, STUDENT, TEACHER, CORRECT, HAS_TEACHER, MASK, mode, lam=lam, eps_w=eps_w)


def test_grpo_leaves_sequence_advantages():
    assert torch.equal(shaped("grpo"), ADV.unsqueeze(1).expand(4, 4))


def test_rlrt_by_hand():
    expected = torch.tensor(
        [
            [1.5, 0.75, 1.5, 1.0],  # w = 2, 0.5, clip(3) = 2 -> m = 1.5, 0.75, 1.5; padding keeps A
            [-0.5, -0.5, -0.5, -0.5],  # incorrect: the gate keeps plain GRPO
            [0.0, 0.0, 0.0, 0.0],  # A = 0 stays 0
            [1.0, 1.0, 1.0, 1.0],  # no teacher context: A
        ]
    )
    torch.testing.assert_close(shaped("rlrt"), expected)


def test_rlrt_all_reweights_incorrect_rows_by_sign_of_a():
    out = shaped("rlrt_all")
    # row 1: w = exp(-D) = [0.5, 4 -> clip 2], m = [0.75, 1.5]
    torch.testing.assert_close(out[1], torch.tensor([-0.375, -0.75, -0.5, -0.5]))
    torch.testing.assert_close(out[0], torch.tensor([1.5, 0.75, 1.5, 1.0]))


def test_teacher_up_is_gated_and_reversed():
    out = shaped("teacher_up")
    # row 0: w = P_T/P_S = [0.5, 2, 1/3], m = [0.75, 1.5, 2/3]
    torch.testing.assert_close(out[0], torch.tensor([0.75, 1.5, 0.5 + 0.5 / 3, 1.0]))
    torch.testing.assert_close(out[1], torch.full((4,), -0.5))


def test_rlsd_is_ungated_and_reversed():
    out = shaped("rlsd")
    torch.testing.assert_close(out[0], torch.tensor([0.75, 1.5, 0.5 + 0.5 / 3, 1.0]))
    # row 1: w = exp(+D) = [2, 0.25], m = [1.5, 0.625]
    torch.testing.assert_close(out[1], torch.tensor([-0.75, -0.3125, -0.5, -0.5]))


def test_clip_bounds_follow_eps_w():
    out = shaped("rlrt", eps_w=0.2)
    # w = 2 -> 1.2 -> m = 1.1;  w = 0.5 -> 0.8 -> m = 0.9
    torch.testing.assert_close(out[0, :3], torch.tensor([1.1, 0.9, 1.1]))


def test_lambda_mixing():
    out = shaped("rlrt", lam=0.25)
    # m = 0.75 + 0.25 * w
    torch.testing.assert_close(out[0, :3], torch.tensor([1.25, 0.875, 1.25]))
    torch.testing.assert_close(shaped("rlrt", lam=1.0)[0, :3], torch.tensor([2.0, 0.5, 2.0]))


@pytest.mark.parametrize("mode", ["rlrt", "rlrt_all", "teacher_up", "rlsd"])
def test_lambda_zero_is_grpo(mode):
    assert torch.equal(shaped(mode, lam=0.0), shaped("grpo"))


def test_all_correct_group_changes_nothing():
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0])
    adv = group_advantages(rewards, 4)
    assert torch.equal(adv, torch.zeros(4))
    everyone = torch.ones(4, dtype=torch.bool)
    out = shape_advantages(adv, STUDENT, TEACHER, everyone, everyone, MASK)
    assert torch.equal(out, torch.zeros(4, 4))
    assert not rows_needing_teacher(adv, everyone, everyone, "rlrt").any()


def test_group_advantages_by_hand():
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0]), 3, eps=0.0)
    std = torch.tensor([1.0, 0.0, 0.0]).std()
    torch.testing.assert_close(adv[:3], torch.tensor([2 / 3, -1 / 3, -1 / 3]) / std)
    torch.testing.assert_close(group_advantages(torch.tensor([1.0, 0.0]), 2, scale=False), torch.tensor([0.5, -0.5]))
    with pytest.raises(ValueError, match="divisible"):
        group_advantages(torch.ones(5), 2)


def test_rows_needing_teacher_per_variant():
    assert rows_needing_teacher(ADV, CORRECT, HAS_TEACHER, "rlrt").tolist() == [True, False, False, False]
    assert rows_needing_teacher(ADV, CORRECT, HAS_TEACHER, "rlrt_all").tolist() == [True, True, False, False]
    assert rows_needing_teacher(ADV, CORRECT, HAS_TEACHER, "grpo").tolist() == [False] * 4


def test_log_ratio_clamps_masks_and_uses_float32():
    d = log_ratio(torch.tensor([[50.0, 1.0]], dtype=torch.bfloat16), torch.tensor([[0.0, 0.0]]), torch.tensor([[1, 0]]))
    assert d.dtype == torch.float32
    assert d.tolist() == [[20.0, 0.0]]


def test_shaped_advantages_carry_no_gradient():
    student = STUDENT.clone().requires_grad_(True)
    out = shape_advantages(ADV, student, TEACHER, CORRECT, HAS_TEACHER, MASK)
    assert not out.requires_grad


def test_unknown_mode_names_choices():
    with pytest.raises(ValueError, match="rlrt_all"):
        shaped("rlrtt")


def test_lambda_decay():
    assert lambda_at_step(0.5, 0, 50) == 0.5
    assert lambda_at_step(0.5, 25, 50) == 0.25
    assert lambda_at_step(0.5, 80, 50) == 0.0
    assert lambda_at_step(0.5, 80, 0) == 0.5


def test_shaping_metrics_by_hand():
    stats = shaping_metrics(ADV, STUDENT, TEACHER, CORRECT, HAS_TEACHER, MASK, "rlrt", 0.5, 1.0)
    mean = {k: v[0] / v[1] for k, v in stats.items()}
    assert mean["gated_frac"] == 0.5 and mean["teacher_frac"] == 0.75 and mean["shaped_frac"] == 0.25
    # row 0's three tokens: w = 2, 0.5, 3 ; D = ln2, -ln2, ln3
    assert mean["weight_mean"] == pytest.approx((2 + 0.5 + 3) / 3, rel=1e-5)
    assert stats["weight_max"][0] == pytest.approx(3.0, rel=1e-5)
    assert mean["multiplier_mean"] == pytest.approx((1.5 + 0.75 + 1.5) / 3, rel=1e-5)
    assert mean["clip_high_frac"] == pytest.approx(2 / 3)
    assert mean["clip_low_frac"] == 0.0
    assert mean["self_driven_frac"] == pytest.approx(2 / 3)
    assert mean["log_ratio_mean"] == pytest.approx(LN(3) / 3, rel=1e-5)


# ----------------------------------------------------------------------------------------- properties

finite = st.floats(-30, 30, allow_nan=False, width=32)
# Zero, or away from float32's subnormal range where A * m / A is no longer m.
advantage_values = st.one_of(st.just(0.0), st.floats(0.0625, 3.0, width=32), st.floats(-3.0, -0.0625, width=32))


@st.composite
def batches(draw):
    b = draw(st.integers(1, 5))
    t = draw(st.integers(1, 6))
    adv = torch.tensor(draw(st.lists(advantage_values, min_size=b, max_size=b)))
    student = torch.tensor(draw(st.lists(st.lists(finite, min_size=t, max_size=t), min_size=b, max_size=b)))
    teacher = torch.tensor(draw(st.lists(st.lists(finite, min_size=t, max_size=t), min_size=b, max_size=b)))
    correct = torch.tensor(draw(st.lists(st.booleans(), min_size=b, max_size=b)))
    has_teacher = torch.tensor(draw(st.lists(st.booleans(), min_size=b, max_size=b)))
    row = st.lists(st.sampled_from([0, 1]), min_size=t, max_size=t)
    mask = torch.tensor(draw(st.lists(row, min_size=b, max_size=b)))
    return adv, student, teacher, correct, has_teacher, mask


modes = st.sampled_from(["rlrt", "rlrt_all", "teacher_up", "rlsd"])
lams = st.floats(0.0, 1.0)
eps_ws = st.floats(0.01, 3.0)


@settings(max_examples=200, deadline=None)
@given(batches(), modes, lams, eps_ws)
def test_multiplier_within_bounds(batch, mode, lam, eps_w):
    adv, student, teacher, correct, has_teacher, mask = batch
    out = shape_advantages(adv, student, teacher, correct, has_teacher, mask, mode, lam, eps_w)
    nonzero = adv != 0
    ratio = out[nonzero] / adv[nonzero].unsqueeze(1)
    low = (1 - lam) + lam * max(0.0, 1 - eps_w)
    high = (1 - lam) + lam * (1 + eps_w)
    assert (ratio >= low - 1e-5).all() and (ratio <= high + 1e-5).all()


@settings(max_examples=200, deadline=None)
@given(batches(), modes, lams, eps_ws)
def test_sign_never_flips(batch, mode, lam, eps_w):
    adv, student, teacher, correct, has_teacher, mask = batch
    out = shape_advantages(adv, student, teacher, correct, has_teacher, mask, mode, lam, eps_w)
    assert (out * adv.unsqueeze(1) >= 0).all()
    if lam < 1 or eps_w < 1:  # the multiplier is then strictly positive
        assert torch.equal(torch.sign(out), torch.sign(adv).unsqueeze(1).expand_as(out))


@settings(max_examples=200, deadline=None)
@given(batches())
def test_teacher_up_weight_is_reciprocal_of_rlrt(batch):
    adv, student, teacher, _, _, mask = batch
    d = log_ratio(student, teacher, mask)
    w_rlrt = token_weights(d, adv, +1)
    w_up = token_weights(d, adv, -1)
    torch.testing.assert_close(w_rlrt * w_up, torch.ones_like(w_rlrt))


@settings(max_examples=100, deadline=None)
@given(batches(), modes)
def test_ungated_rows_untouched_without_teacher(batch, mode):
    adv, student, teacher, correct, _, mask = batch
    no_teacher = torch.zeros_like(correct)
    out = shape_advantages(adv, student, teacher, correct, no_teacher, mask, mode)
    assert torch.equal(out, adv.unsqueeze(1).expand_as(out))


@given(st.floats(0.0, 50.0), lams, eps_ws)
def test_token_multiplier_scalar(w, lam, eps_w):
    m = token_multiplier(torch.tensor(w), lam, eps_w).item()
    assert m == pytest.approx((1 - lam) + lam * min(max(w, 1 - eps_w), 1 + eps_w), rel=1e-5, abs=1e-6)
