"""Training: the PreTrainer loop, checkpoints, run configs and the ``train``/``sample``/``eval`` commands."""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import ConfigError, load_config
from .recipe import build_run, load_run
from .trainer import PreTrainer, TrainingConfig, TrainingDivergedError, TrainingResult

__all__ = [
    "CheckpointError", "ConfigError", "PreTrainer", "TrainingConfig", "TrainingDivergedError", "TrainingResult",
    "build_run", "load_checkpoint", "load_config", "load_run", "save_checkpoint",
]
