"""RLRTConfig defaults and validation messages."""

from __future__ import annotations

import pytest

from rlrt import RLRTConfig


def config(**kwargs):
    return RLRTConfig(output_dir="/tmp/rlrt-config-test", report_to="none", **kwargs)


def test_paper_defaults():
    c = config()
    assert (c.loss_type, c.epsilon, c.epsilon_high, c.beta, c.num_generations) == ("dapo", 0.2, 0.28, 0.0, 8)
    assert (c.shaping, c.shaping_lambda, c.shaping_eps_w) == ("rlrt", 0.5, 1.0)
    assert (c.teacher_context, c.teacher_weights, c.student_logps) == ("sibling", "live", "rollout")
    assert c.shaping_lambda_decay_steps == 0


def test_variant_defaults():
    rlsd = config(shaping="rlsd")
    assert rlsd.teacher_context == "reference" and rlsd.shaping_lambda_decay_steps == 50
    assert config(shaping="rlsd", shaping_lambda_decay_steps=0).shaping_lambda_decay_steps == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shaping": "rlrt2"}, "choose one of"),
        ({"shaping_lambda": 1.5}, "shaping_lambda must lie in"),
        ({"shaping_eps_w": 0.0}, "shaping_eps_w must be > 0"),
        ({"teacher_context": "oracle"}, "teacher_context='oracle' is not valid"),
        ({"teacher_weights": "copy"}, "teacher_weights"),
        ({"teacher_ema_rate": 0.0}, "teacher_ema_rate"),
        ({"student_logps": "old"}, "student_logps"),
        ({"teacher_prompt_template": "no placeholders"}, r"\{prompt\}"),
        ({"teacher_context": "reference", "teacher_context_fallback": "answer"}, "only applies"),
        ({"max_teacher_prompt_length": 4}, "max_teacher_prompt_length"),
        ({"shaping_lambda_decay_steps": -1}, "decay_steps"),
        ({"correctness_threshold": float("nan")}, "correctness_threshold must be a finite reward value; got nan"),
        ({"correctness_threshold": float("inf")}, "correctness_threshold must be a finite reward value"),
    ],
)
def test_invalid_values_name_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        config(**kwargs)
