"""rlrt: RLVR with Reversed Teacher (RLRT) and its baselines on Hugging Face TRL."""

from .algorithms import VARIANTS, group_advantages, shape_advantages
from .config import RLRTConfig
from .run import build_trainer
from .step import Rollouts, StepResult, rlrt_step
from .trainer import RLRTTrainer

__version__ = "0.1.0"
__all__ = ["RLRTConfig", "RLRTTrainer", "Rollouts", "StepResult", "VARIANTS", "__version__", "build_trainer",
           "group_advantages", "rlrt_step", "shape_advantages"]
