"""`gg.nn`: modules, layers, activations, losses; `functional`, `init` and `utils`."""

from __future__ import annotations

from . import functional, init, parallel, utils
from .activation import (  # noqa: I001 - appended: the pointwise-table activations
    CELU,
    ELU,
    GELU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
    Swish,
    Tanh,
)
from .attention import MultiheadAttention
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv1d, Conv2d
from .graph import GraphConv
from .implicit import DEQFixedPoint
from .layers import Dropout, Embedding, Flatten, Identity, Linear, Unflatten
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
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Linear", "Embedding",
    "Dropout", "Identity", "Flatten", "LayerNorm", "BatchNorm1d", "BatchNorm2d", "ReLU",
    "Sigmoid", "Tanh", "GELU", "SiLU", "Swish", "LeakyReLU", "Softmax", "LogSoftmax",
    "MSELoss", "L1Loss", "HuberLoss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
    "BCEWithLogitsLoss", "functional", "init", "utils",
    "DEQFixedPoint",
    "Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Unflatten",
    "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "MultiheadAttention", "GraphConv",
    "Softplus", "Mish", "ELU", "SELU", "CELU", "Hardtanh", "ReLU6", "Hardsigmoid", "Hardswish",
    "Softsign", "LogSigmoid",
]

from .transformer import (  # noqa: E402
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ += ["Transformer", "TransformerEncoder", "TransformerDecoder",
            "TransformerEncoderLayer", "TransformerDecoderLayer"]

from .conv_more import Conv3d, ConvTranspose1d, ConvTranspose2d  # noqa: E402
from .layers_more import (  # noqa: E402
    AlphaDropout,
    AvgPool1d,
    Bilinear,
    Dropout1d,
    Dropout2d,
    EmbeddingBag,
    MaxPool1d,
    PixelShuffle,
    PixelUnshuffle,
    Upsample,
)
from .normalization_more import (  # noqa: E402
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    LocalResponseNorm,
    RMSNorm,
)
from .param_containers import ParameterDict, ParameterList  # noqa: E402

__all__ += ["Conv3d", "ConvTranspose1d", "ConvTranspose2d", "AlphaDropout", "AvgPool1d",
            "Bilinear", "Dropout1d", "Dropout2d", "EmbeddingBag", "MaxPool1d", "PixelShuffle",
            "PixelUnshuffle", "Upsample", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
            "LocalResponseNorm", "RMSNorm", "ParameterDict", "ParameterList"]

from .loss_more import (  # noqa: E402
    CosineEmbeddingLoss,
    CTCLoss,
    GaussianNLLLoss,
    KLDivLoss,
    MarginRankingLoss,
    PoissonNLLLoss,
    SmoothL1Loss,
    TripletMarginLoss,
)

__all__ += ["CTCLoss", "KLDivLoss", "MarginRankingLoss", "TripletMarginLoss",
            "CosineEmbeddingLoss", "PoissonNLLLoss", "GaussianNLLLoss", "SmoothL1Loss"]

from .wrappers_more import (  # noqa: E402
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AvgPool3d,
    CosineSimilarity,
    Dropout3d,
    Fold,
    InstanceNorm3d,
    MaxPool3d,
    MaxUnpool2d,
    PairwiseDistance,
    Unfold,
    UpsamplingBilinear2d,
    UpsamplingNearest2d,
)

__all__ += ["MaxPool3d", "AvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "MaxUnpool2d",
            "Fold", "Unfold", "CosineSimilarity", "PairwiseDistance", "UpsamplingNearest2d",
            "UpsamplingBilinear2d", "Dropout3d", "InstanceNorm3d"]

from .padding import (  # noqa: E402
    CircularPad1d,
    CircularPad2d,
    CircularPad3d,
    ConstantPad1d,
    ConstantPad2d,
    ConstantPad3d,
    ReflectionPad1d,
    ReflectionPad2d,
    ReflectionPad3d,
    ReplicationPad1d,
    ReplicationPad2d,
    ReplicationPad3d,
    ZeroPad1d,
    ZeroPad2d,
    ZeroPad3d,
)

__all__ += [f"{kind}Pad{n}d" for kind in ("Zero", "Constant", "Reflection", "Replication",
                                           "Circular") for n in (1, 2, 3)]

from .loss_more import (  # noqa: E402
    HingeEmbeddingLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    SoftMarginLoss,
    TripletMarginWithDistanceLoss,
)
from .wrappers_more import AdaptiveAvgPool1d, ChannelShuffle  # noqa: E402

__all__ += ["HingeEmbeddingLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss",
            "SoftMarginLoss", "TripletMarginWithDistanceLoss", "AdaptiveAvgPool1d",
            "ChannelShuffle"]

from .wrappers_more import (  # noqa: E402
    AdaptiveAvgPool3d,
    AdaptiveMaxPool3d,
    BatchNorm3d,
    LPPool1d,
    LPPool2d,
    LPPool3d,
)

__all__ += ["AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "BatchNorm3d", "LPPool1d", "LPPool2d",
            "LPPool3d"]

from .conv_more import ConvTranspose3d  # noqa: E402

__all__ += ["ConvTranspose3d"]

from .layers_more import FeatureAlphaDropout  # noqa: E402
from .wrappers_more import MaxUnpool1d  # noqa: E402

__all__ += ["FeatureAlphaDropout", "MaxUnpool1d"]

from .loss_more import MultiLabelMarginLoss  # noqa: E402

__all__ += ["MultiLabelMarginLoss"]
