"""`gg.nn`: modules, layers, activations, losses; `functional`, `init` and `utils`."""

from __future__ import annotations

from . import functional, init, utils
from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Swish, Tanh
from .container import ModuleDict, ModuleList, Sequential
from .layers import Dropout, Embedding, Flatten, Identity, Linear
from .loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from .parameter import Parameter

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Linear", "Embedding",
    "Dropout", "Identity", "Flatten", "LayerNorm", "BatchNorm1d", "BatchNorm2d", "ReLU",
    "Sigmoid", "Tanh", "GELU", "SiLU", "Swish", "LeakyReLU", "Softmax", "LogSoftmax",
    "MSELoss", "L1Loss", "HuberLoss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
    "BCEWithLogitsLoss", "functional", "init", "utils",
]
