"""Evaluation: batched sampling, verification, avg@k and unbiased pass@k."""

from .evaluate import evaluate_model, markdown_table, write_results
from .metrics import avg_at_k, pass_at_k, summarize
from .sampling import SamplingConfig, sample_completions

__all__ = ["SamplingConfig", "avg_at_k", "evaluate_model", "markdown_table", "pass_at_k", "sample_completions",
           "summarize", "write_results"]
