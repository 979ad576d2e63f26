"""Analysis: token asymmetry (inspect) and run reports."""

from .asymmetry import candidate_shift, token_asymmetry

__all__ = ["candidate_shift", "token_asymmetry"]
