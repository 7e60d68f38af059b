"""cupy.cuda.runtime: one emulated device (GPUGRAD_MOCK_CUDA_DEVICES sets how many)."""

import os


class CUDARuntimeError(RuntimeError):
    """An error of the (emulated) CUDA runtime."""


def getDeviceCount() -> int:
    return int(os.environ.get("GPUGRAD_MOCK_CUDA_DEVICES", "1"))


def deviceSynchronize() -> None:
    pass


def getDevice() -> int:
    return 0


def memGetInfo(device=None):
    return (16 << 30, 16 << 30)


def runtimeGetVersion() -> int:
    return 12040


def driverGetVersion() -> int:
    return 12040


def getDeviceProperties(device):
    return {"name": b"gpugrad mock CUDA device (CPU emulator)", "totalGlobalMem": 16 << 30,
            "multiProcessorCount": 2, "major": 9, "minor": 0}
