"""Training: the PreTrainer loop, checkpoints, run configs and the ``train``/``sample``/``eval`` commands."""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import ConfigError, load_config
from .trainer import PreTrainer, TrainingConfig, TrainingDivergedError, TrainingResult

__all__ = [
    "CheckpointError", "ConfigError", "PreTrainer", "TrainingConfig", "TrainingDivergedError", "TrainingResult",
    "load_checkpoint", "load_config", "save_checkpoint",
]
