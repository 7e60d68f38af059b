"""gpugrad's documented exception types."""


class DeviceError(RuntimeError):
    """Tensors on different devices were combined in one operation."""


class ShapeError(RuntimeError, ValueError):
    """Operand shapes are incompatible for an operation (names both shapes and the op)."""


class SerializationError(ValueError):
    """A file given to `gg.load` is corrupt, truncated or not a gpugrad/safetensors file."""
