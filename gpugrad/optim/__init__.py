"""Optimizers (SGD, Adam, AdamW, RMSprop) and learning-rate schedulers, as in torch.optim."""

from __future__ import annotations

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]

from .adadelta import Adadelta  # noqa: E402
from .adagrad import Adagrad  # noqa: E402
from .adamax import Adamax  # noqa: E402
from .lbfgs import LBFGS  # noqa: E402
from .nadam import NAdam  # noqa: E402
from .radam import RAdam  # noqa: E402

__all__ += ["Adadelta", "Adagrad", "Adamax", "NAdam", "RAdam", "LBFGS"]

from . import swa_utils  # noqa: E402

__all__ += ["swa_utils"]

from .asgd import ASGD  # noqa: E402
from .rprop import Rprop  # noqa: E402

__all__ += ["ASGD", "Rprop"]
