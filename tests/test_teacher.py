"""The privileged teacher: context choice, prompt building, weights (live/frozen/EMA) and scoring."""

from __future__ import annotations

import pytest
import torch

from rlrt.teacher import (
    DEFAULT_TEACHER_TEMPLATE,
    TeacherWeights,
    build_teacher_prompt,
    choose_contexts,
    fill_template,
    left_pad,
    model_logps_fn,
    score_teacher,
    tokenize_teacher_prompts,
)

LATEX = r"Compute $\frac{1}{2} + \{x\}$ with {solution} and {0} left alone."


def test_fill_template_is_literal_and_single_pass():
    out = fill_template(DEFAULT_TEACHER_TEMPLATE, LATEX, r"\boxed{\frac{3}{4}} {prompt}")
    assert out == (
        LATEX + "\nCorrect solution:\n\n" + r"\boxed{\frac{3}{4}} {prompt}"
        + "\n\nCorrectly solve the original question.\n"
    )


def test_build_teacher_prompt_keeps_system_and_rewrites_last_user_turn():
    prompt = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    out = build_teacher_prompt(prompt, "2+2=4", "{prompt}|{solution}")
    assert out == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?|2+2=4"}]
    assert prompt[1]["content"] == "What is 2+2?"  # input untouched
    assert build_teacher_prompt("Q", "S", "{prompt}|{solution}") == "Q|S"


def test_sibling_context_is_another_correct_rollout_never_itself():
    completions = ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"]
    correct = [True, False, True, True, False, True, False, False]
    contexts = choose_contexts(range(8), 4, correct, completions, "sibling", seed=3, step=1)
    assert contexts[0] in ("a2", "a3") and contexts[2] in ("a0", "a3") and contexts[3] in ("a0", "a2")
    assert contexts[1] in ("a0", "a2", "a3")  # an incorrect row may see any correct sibling (rlrt_all)
    assert contexts[5] is None  # the lone correct rollout of group b has no teacher
    assert contexts[4] == contexts[6] == contexts[7] == "b1"
    for row, context in enumerate(contexts):
        assert context != completions[row]


def test_sibling_choice_does_not_depend_on_process_split():
    completions = [f"c{i}" for i in range(8)]
    correct = [True] * 8
    whole = choose_contexts(range(8), 8, correct, completions, "sibling", seed=7, step=5)
    halves = choose_contexts(range(4), 8, correct, completions, "sibling", seed=7, step=5) + choose_contexts(
        range(4, 8), 8, correct, completions, "sibling", seed=7, step=5
    )
    assert whole == halves
    assert whole != choose_contexts(range(8), 8, correct, completions, "sibling", seed=7, step=6)


def test_sibling_selection_first_and_shortest():
    completions = ["long answer", "x", "medium", "yy"]
    correct = [True, True, True, True]
    assert choose_contexts([0], 4, correct, completions, "sibling", selection="first") == ["x"]
    assert choose_contexts([1], 4, correct, completions, "sibling", selection="shortest") == ["yy"]


def test_reference_answer_and_fallback():
    correct = [True, False]
    completions = ["mine", "other"]
    assert choose_contexts([0], 2, correct, completions, "sibling", references=["ref"], fallback="reference") == ["ref"]
    assert choose_contexts([0], 2, correct, completions, "sibling", answers=["42"], fallback="answer") == [
        "The final answer is \\boxed{42}."
    ]
    assert choose_contexts([0, 1], 2, correct, completions, "reference", references=["r0", ""]) == ["r0", None]
    assert choose_contexts([1], 2, correct, completions, "answer", answers=[None]) == [None]


def test_teacher_prompt_tokens_respect_the_bound(tokenizer):
    prompt = [{"role": "user", "content": "What is 2+2?"}]
    solution = " ".join(["step"] * 400) + " so the answer is 4"
    free = tokenize_teacher_prompts(tokenizer, [prompt], [solution], DEFAULT_TEACHER_TEMPLATE, 10_000)[0]
    bounded = tokenize_teacher_prompts(tokenizer, [prompt], [solution], DEFAULT_TEACHER_TEMPLATE, 120)[0]
    assert len(free) > 400 and len(bounded) <= 120
    text = tokenizer.decode(bounded)
    assert "What is 2+2?" in text and "Correctly solve the original question." in text and "step step" in text
    with pytest.raises(ValueError, match="max_teacher_prompt_length"):
        tokenize_teacher_prompts(tokenizer, [prompt], [solution], DEFAULT_TEACHER_TEMPLATE, 16)


def test_teacher_prompt_uses_chat_template(tokenizer):
    ids = tokenize_teacher_prompts(
        tokenizer, [[{"role": "user", "content": "Q?"}]], ["S."], DEFAULT_TEACHER_TEMPLATE, 512
    )[0]
    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n")
    assert "Q?\nCorrect solution:\n\nS.\n\nCorrectly solve the original question.\n" in text


def _linear():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def test_ema_teacher_moves_toward_the_policy_by_tau():
    model = _linear()
    teacher = TeacherWeights(model, "ema", ema_rate=0.25)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(4.0)
    teacher.update(model)
    # theta_T <- (1 - tau) * theta_T + tau * theta = start + 0.25 * 4
    torch.testing.assert_close(teacher.snapshot["weight"], start + 1.0)
    x = torch.ones(1, 3)
    with teacher.apply(model):
        inside = model(x)
    torch.testing.assert_close(inside, torch.nn.functional.linear(x, start + 1.0, teacher.snapshot["bias"]))
    torch.testing.assert_close(model.weight, start + 4.0)  # the policy is restored


def test_frozen_teacher_stays_at_the_initial_weights_and_restores_on_error():
    model = _linear()
    teacher = TeacherWeights(model, "frozen")
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.mul_(3.0)
    teacher.update(model)  # no-op for frozen
    with pytest.raises(RuntimeError), teacher.apply(model):
        torch.testing.assert_close(model.weight, start)
        raise RuntimeError("boom")
    torch.testing.assert_close(model.weight, start * 3.0)


def test_frozen_teacher_with_lora_disables_adapters(tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    teacher = TeacherWeights(model, "frozen")
    assert teacher.uses_adapters and teacher.snapshot == {}
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
        with teacher.apply(model):
            frozen = model(input_ids=ids).logits
        with model.disable_adapter():
            plain = model(input_ids=ids).logits
    torch.testing.assert_close(frozen, plain)
    assert not torch.allclose(adapted, plain)


def test_score_teacher_only_scores_selected_rows_and_matches_a_direct_forward(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    completion_ids = torch.tensor([[5, 6, 7], [8, 9, 0], [10, 11, 12]])
    completion_mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1]])
    rows = torch.tensor([False, True, True])
    prompts = [[20, 21], [30, 31, 32, 33]]
    out = score_teacher(model_logps_fn(model), prompts, completion_ids, completion_mask, rows, 0, batch_size=1)
    assert out.shape == (3, 3) and torch.equal(out[0], torch.zeros(3)) and out[1, 2] == 0
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[30, 31, 32, 33, 10, 11, 12]])).logits[0].log_softmax(-1)
    expected = torch.stack([logits[3, 10], logits[4, 11], logits[5, 12]])
    torch.testing.assert_close(out[2], expected, rtol=1e-4, atol=1e-4)


def test_left_pad():
    ids, mask = left_pad([[1, 2], [3]], pad_id=0)
    assert ids.tolist() == [[1, 2], [0, 3]] and mask.tolist() == [[1, 1], [0, 1]]
