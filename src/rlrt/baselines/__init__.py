"""Baselines trained by another library's trainer, through rlrt's command line, run folders and guards."""

from .sdpo import SDPOBaselineTrainer, to_sdpo_config

__all__ = ["SDPOBaselineTrainer", "to_sdpo_config"]
