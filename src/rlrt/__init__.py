"""rlrt: RLVR with Reversed Teacher (RLRT) and its baselines on Hugging Face TRL."""

from .algorithms import VARIANTS, group_advantages, shape_advantages
from .config import RLRTConfig
from .run import build_trainer
from .trainer import RLRTTrainer

__version__ = "0.1.0"
__all__ = ["RLRTConfig", "RLRTTrainer", "build_trainer", "VARIANTS", "group_advantages", "shape_advantages",
           "__version__"]
