"""The RLRT algorithm as pure tensor functions (no trainer, no model): see ``shaping`` and ``advantages``."""

from .advantages import group_advantages
from .shaping import (
    VARIANTS,
    Shaping,
    ShapingVariant,
    get_variant,
    lambda_at_step,
    log_ratio,
    rows_needing_teacher,
    shape,
    shape_advantages,
    shaping_metrics,
    token_multiplier,
    token_weights,
)

__all__ = [
    "VARIANTS",
    "Shaping",
    "ShapingVariant",
    "get_variant",
    "group_advantages",
    "lambda_at_step",
    "log_ratio",
    "rows_needing_teacher",
    "shape",
    "shape_advantages",
    "shaping_metrics",
    "token_multiplier",
    "token_weights",
]
