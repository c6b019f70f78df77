"""Multi-class 3D U-Net: training on sparse labels, sliding-window prediction, checkpoints.

Importing this package does not import torch; the functions that need it import it when called.
"""

from .model import Normalisation, SegmentationModel, resolve_device
from .prediction import PredictConfig, Prediction, PredictOutputs, predict
from .pretrained import pretrained_model, starting_model
from .training import TrainConfig, TrainProgress, TrainResult, train

__all__ = [
    "Normalisation",
    "PredictConfig",
    "PredictOutputs",
    "Prediction",
    "SegmentationModel",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "predict",
    "pretrained_model",
    "resolve_device",
    "starting_model",
    "train",
]
