"""CUDA availability, device helpers and CUDA graphs (CuPy is imported lazily, only when
asked, so this module imports without CuPy)."""

from __future__ import annotations

import contextlib
import functools

from .errors import DeviceError, ShapeError

__all__ = ["is_available", "device_count", "synchronize", "is_current_stream_capturing",
           "CUDAGraph", "graph", "graphed", "manual_seed", "manual_seed_all"]


@functools.lru_cache(maxsize=1)
def _probe() -> int:
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no CuPy, no driver, no device: all mean "no GPU"
        return 0


def is_available() -> bool:
    """True only when CuPy imports and at least one GPU answers."""
    return _probe() > 0


def device_count() -> int:
    """Number of visible CUDA devices (0 without CuPy or a GPU)."""
    return _probe()


def synchronize() -> None:
    """Wait for all queued work on the current GPU (counted by the backend's sync counter)."""
    if is_available():
        from .backend import get_backend

        get_backend("cuda").synchronize()


def manual_seed(seed: int) -> None:
    """Seed the random numbers of the current GPU (does nothing without CUDA, as PyTorch)."""
    if is_available():
        from .backend import get_backend

        get_backend("cuda").manual_seed(int(seed))


def manual_seed_all(seed: int) -> None:
    """Seed the random numbers of every GPU (does nothing without CUDA, as PyTorch)."""
    from .backend import get_backend

    for i in range(device_count()):
        get_backend(f"cuda:{i}").manual_seed(int(seed))


def is_current_stream_capturing() -> bool:
    """True while the current CUDA stream is capturing a graph (False without a GPU)."""
    if not is_available():
        return False
    import cupy

    return bool(cupy.cuda.get_current_stream().is_capturing())


# --- CUDA graphs -----------------------------------------------------------------------------
class CUDAGraph:
    """GPU work captured once and replayed with one launch, as `torch.cuda.CUDAGraph`.

    ```
    g = gg.cuda.CUDAGraph()
    with g.capture():          # records, does not run, the work on a private stream
        loss = step(static_x, static_y)
    static_x.copy_(new_x); g.replay()   # reruns it on the same buffers
    ```

    Rules, as in PyTorch: inputs must live in static buffers that you refill in place;
    outputs are the tensors created during capture, rewritten by each replay; run the step
    eagerly a few times first (warm-up) so that optimizer state, kernel compilation and
    memory pools exist before the capture; nothing inside may read data back to the host
    (CuPy raises); host numbers (a learning rate, Adam's step count unless
    `capturable=True`) are frozen into the graph; random number generation (dropout)
    inside a capture is not supported.

    Memory: everything allocated during the capture comes from a memory pool private to
    this graph, kept (with the cuBLAS handle and workspace of the capture GEMM) until the
    graph is reset or deleted, so a replay never writes into memory handed out since.
    matmul runs through `gpugrad._capture_gemm` while capturing (CuPy refuses cuBLAS
    calls during capture; see that module).
    """

    def __init__(self, device: str | None = None) -> None:
        if not is_available():
            raise DeviceError("CUDAGraph: CUDA graphs need a CUDA device, but CUDA is not "
                              "available here (only the cpu device exists)")
        from .backend import get_backend

        self._backend = get_backend(device or "cuda")
        self._graph = None
        self._capture = None  # the ExitStack of an open capture
        self._keep: list = []  # pool, stream, GEMM of the captured graph

    def capture_begin(self) -> None:
        """Start capturing the calling thread's GPU work into this graph."""
        import cupy

        from ._capture_gemm import CaptureGemm, CaptureXp

        if self._capture is not None:
            raise RuntimeError("CUDAGraph.capture_begin: a capture is already open")
        self.reset()
        backend = self._backend
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(backend.cuda_device)
            backend.synchronize()  # queued eager work must not race the captured buffers
            pool = cupy.cuda.MemoryPool()
            stream = cupy.cuda.Stream(non_blocking=True)
            stack.enter_context(stream)
            gemm = CaptureGemm(cupy, stream.ptr)  # allocates: before the capture begins
            stack.callback(setattr, backend, "xp", backend.xp)
            backend.xp = CaptureXp(cupy, gemm, stream.ptr)
            # Host buffers and device arrays that captured copies read (the multi-tensor
            # kernels' metadata): they must live as long as the graph.
            captured_inputs: list = []
            stack.callback(setattr, backend, "_capture_keep", None)
            backend._capture_keep = captured_inputs
            stack.enter_context(cupy.cuda.using_allocator(pool.malloc))
            stream.begin_capture()
        except BaseException:
            stack.close()
            raise
        self._keep = [pool, stream, gemm, captured_inputs]
        self._capture = stack

    def capture_end(self) -> None:
        """Finish the capture; the graph is ready to `replay()`."""
        if self._capture is None:
            raise RuntimeError("CUDAGraph.capture_end: no capture is open")
        stream = self._keep[1]
        stack, self._capture = self._capture, None
        try:
            with stack:
                self._graph = stream.end_capture()
        except BaseException:
            self.reset()
            raise

    def _abort(self) -> None:
        stream = self._keep[1]
        stack, self._capture = self._capture, None
        with stack, contextlib.suppress(Exception):
            stream.end_capture()
        self.reset()

    @contextlib.contextmanager
    def capture(self):
        """Context manager: `capture_begin()` on entry, `capture_end()` on exit; an error
        inside abandons the capture (nothing is kept) and is re-raised."""
        self.capture_begin()
        try:
            yield self
        except NotImplementedError as e:  # CuPy's refusal of a library call in capture
            self._abort()
            raise RuntimeError(f"CUDAGraph.capture: {e} (gpugrad reroutes matmul during "
                               "capture; this op called a CUDA library through CuPy)") from e
        except BaseException:
            self._abort()
            raise
        self.capture_end()

    def replay(self) -> None:
        """Launch the captured work on the current stream (asynchronously)."""
        if self._graph is None:
            raise RuntimeError("CUDAGraph.replay: nothing has been captured; use capture() "
                               "first")
        with self._backend.cuda_device:
            self._graph.launch()

    def reset(self) -> None:
        """Drop the graph and the memory it kept."""
        if self._capture is not None:
            raise RuntimeError("CUDAGraph.reset: a capture is open")
        self._graph = None
        for obj in self._keep:
            if hasattr(obj, "close"):
                obj.close()
        self._keep = []

    def pool(self):
        """The private CuPy memory pool of the captured work (None before a capture)."""
        return self._keep[0] if self._keep else None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if self._capture is None:
                self.reset()


@contextlib.contextmanager
def graph(cuda_graph: CUDAGraph):
    """`with gg.cuda.graph(g): ...` captures into `g`, as `torch.cuda.graph`."""
    with cuda_graph.capture():
        yield cuda_graph


def graphed(step_fn, *example_inputs, warmup: int = 3):
    """Capture `step_fn(*inputs)` (say forward, backward and optimizer step) in a CUDA graph
    and return a function that replays it on new inputs of the same shapes and dtypes.

    The example inputs are copied into static buffers; `step_fn` runs `warmup` times
    eagerly on them (these are real steps: parameters change) so that state and memory
    exist, then once under capture (which records without running). The returned
    function copies its arguments into the static buffers, replays, and returns the
    outputs of the captured call (the same tensors each time, rewritten by every replay).

    Raises DeviceError naming the device when CUDA is unavailable or an input is not on a
    CUDA device (graphs capture GPU work; PyTorch raises here too).
    """
    from .tensor import Tensor

    for i, x in enumerate(example_inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"graphed: example input {i} must be a Tensor, got "
                            f"{type(x).__name__}")
        if x.device.type != "cuda":
            raise DeviceError(f"graphed: example input {i} is on {x.device}; CUDA graphs "
                              "capture GPU work, so inputs must be on a cuda device")
    if not is_available():
        raise DeviceError("graphed: CUDA graphs need a CUDA device, but CUDA is not available "
                          "here (only the cpu device exists)")
    device = str(example_inputs[0].device) if example_inputs else "cuda"
    static = [x.detach().clone() for x in example_inputs]
    for _ in range(warmup):
        step_fn(*static)
    cuda_graph = CUDAGraph(device)
    with cuda_graph.capture():
        static_out = step_fn(*static)

    def replay(*inputs):
        if len(inputs) != len(static):
            raise TypeError(f"graphed step takes {len(static)} inputs, got {len(inputs)}")
        for i, (buf, x) in enumerate(zip(static, inputs)):
            if tuple(x.shape) != tuple(buf.shape) or x.dtype != buf.dtype:
                raise ShapeError(f"graphed step: input {i} has shape {tuple(x.shape)} and "
                                 f"dtype {x.dtype}, but the graph was captured with shape "
                                 f"{tuple(buf.shape)} and dtype {buf.dtype}")
            if x is not buf:
                buf._data[...] = x.to(buf.device)._data
                buf._bump_version()
        cuda_graph.replay()
        return static_out

    replay.graph = cuda_graph
    replay.static_inputs = static
    return replay
