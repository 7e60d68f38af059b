"""`gg.save` / `gg.load`: tensors and nested state in the safetensors format, no pickle.

A file is an ordinary safetensors file. Tensors live in its tensor table; a plain dict
of tensors with string keys keeps its keys as tensor names, so a model's state dict
opens in `safetensors.torch.load_file` with the same names. Any other structure (dicts
with int keys, lists, tuples, numbers, strings, bools, None: an optimizer's state dict,
say) is written as JSON into the header metadata under "gpugrad.structure", with each
tensor replaced by a reference to its table entry. Loading parses JSON and raw bytes
only, so a file can never run code.

Structure nodes are one-key JSON objects: {"tensor": name, "device": "cuda:0"},
{"dict": [[key, value], ...]}, {"list": [...]}, {"tuple": [...]}, {"str": s},
{"int": n}, {"float": x | "nan" | "inf" | "-inf"}, {"bool": b}, {"none": null}.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import struct
from typing import BinaryIO

import numpy as np

from ._dtype import bfloat16
from .backend import cpu_backend, get_backend
from .device import device as Device
from .errors import DeviceError, SerializationError
from .tensor import Tensor, _wrap_array

__all__ = ["save", "load"]

_FORMAT_KEY = "gpugrad.format"
_STRUCTURE_KEY = "gpugrad.structure"
_FORMAT_VERSION = "1"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
_CHUNK = 1 << 20

# safetensors dtype tag -> NumPy dtype (BF16 is handled apart: NumPy has none).
_NP_OF_TAG = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8,
              "U8": np.uint8, "I16": np.int16, "I32": np.int32, "I64": np.int64,
              "BOOL": np.bool_, "C64": np.complex64}

_SAVABLE = {"float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16", "int32",
            "int64", "bool", "complex64"}


# -- saving ------------------------------------------------------------------------------
def save(obj: object, path: str | os.PathLike | BinaryIO) -> None:
    """Write `obj` (a Tensor, or dicts/lists/tuples of tensors, numbers, strings, bools
    and None) to `path` as a safetensors file. The whole object is encoded first, so an
    unsupported value raises TypeError before the file is touched; the file is replaced
    atomically (temporary file in the same directory, fsync, rename). `path` may also be
    a writable binary file object."""
    data = _serialize(obj)
    if hasattr(path, "write"):
        _write_all(path, data)
        return
    _atomic_write(os.fspath(path), data)


def _serialize(obj) -> bytes:
    import safetensors

    tensors: dict[str, np.ndarray] = {}
    if _is_plain_state_dict(obj):
        structure = {"dict": [[{"str": k}, _tensor_node(v, k, tensors)] for k, v in obj.items()]}
    else:
        structure = _Encoder(tensors).encode(obj, "", set())
    metadata = {_FORMAT_KEY: _FORMAT_VERSION,
                _STRUCTURE_KEY: json.dumps(structure, separators=(",", ":"))}
    specs = {}
    for name, arr in tensors.items():
        dtype = "bfloat16" if "bfloat16" in str(arr.dtype) else arr.dtype.name
        specs[name] = safetensors.TensorSpec(dtype=dtype, shape=list(arr.shape),
                                             data_ptr=arr.ctypes.data, data_len=arr.nbytes)
    return bytes(safetensors.serialize(specs, metadata=metadata))  # `tensors` keeps data alive


def _is_plain_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and k != "__metadata__" and isinstance(v, Tensor)
        for k, v in obj.items())


def _tensor_node(t: Tensor, name: str, tensors: dict) -> dict:
    if t.dtype.name not in _SAVABLE:
        raise TypeError(f"gg.save: cannot save tensor {name!r} of dtype {t.dtype}: the "
                        f"safetensors format has no such dtype")
    arr = t._backend.to_host(t._data)
    if not arr.flags.c_contiguous:  # (np.ascontiguousarray would turn 0-d into 1-d)
        arr = arr.copy(order="C")
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    tensors[name] = arr
    return {"tensor": name, "device": str(t.device)}


class _Encoder:
    """Turns a nested object into structure nodes, collecting its tensors under
    dotted path names ("state.0.exp_avg")."""

    def __init__(self, tensors: dict) -> None:
        self.tensors = tensors

    def encode(self, obj, path: str, active: set) -> dict:
        if isinstance(obj, Tensor):
            return _tensor_node(obj, self._name(path), self.tensors)
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in active:
                raise ValueError(f"gg.save: the object contains itself (at {path or 'top'}); "
                                 "recursive structures cannot be saved")
            active.add(id(obj))
            try:
                if isinstance(obj, dict):
                    return {"dict": [[_scalar_node(k, path, key=True),
                                      self.encode(v, _join(path, k), active)]
                                     for k, v in obj.items()]}
                kind = "list" if isinstance(obj, list) else "tuple"
                return {kind: [self.encode(v, _join(path, i), active)
                               for i, v in enumerate(obj)]}
            finally:
                active.discard(id(obj))
        return _scalar_node(obj, path)

    def _name(self, path: str) -> str:
        name = path or "tensor"
        n = 1
        while name in self.tensors or name == "__metadata__":
            name = f"{path or 'tensor'}#{n}"
            n += 1
        return name


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _scalar_node(value, path: str, key: bool = False) -> dict:
    if value is None:
        return {"none": None}
    if isinstance(value, (bool, np.bool_)):
        return {"bool": bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"int": int(value)}
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return {"float": value if math.isfinite(value) else repr(value)}
    if isinstance(value, str):
        return {"str": value}
    what = "a dict key" if key else "a value"
    raise TypeError(f"gg.save: cannot save {what} of type {type(value).__name__} "
                    f"(at {path or 'top level'}); only tensors, dicts, lists, tuples, numbers, "
                    "strings, bools and None can be saved")


def _write_all(f, data: bytes) -> None:
    """Write `data` to the binary file `f` in chunks."""
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        f.write(view[start:start + _CHUNK])


def _atomic_write(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    while True:
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            _write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable; not every platform can open a directory
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# -- loading -------------------------------------------------------------------------------
def load(path: str | os.PathLike | BinaryIO,
         map_location: str | Device | None = None) -> object:
    """Read an object written by `gg.save` (or a plain safetensors file, e.g. from
    `safetensors.torch.save_file`, which loads as a dict of tensors). Tensors go to
    `map_location` ("cpu", "cuda", a gg.device) or, by default, to the device they were
    saved from when it is available and the CPU otherwise; they do not require grad.
    A missing file raises FileNotFoundError; anything that is not a valid safetensors
    file raises gg.SerializationError. `path` may also be a readable binary file object."""
    target = None if map_location is None else _target_backend(map_location)
    if hasattr(path, "read"):
        name, data = repr(getattr(path, "name", "<file object>")), path.read()
    else:
        name = repr(os.fspath(path))
        with open(path, "rb") as f:
            data = f.read()
    header = _parse_header(data, name)
    arrays = _read_tensors(data, header, name)
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise SerializationError(f"gg.load: {name}: the header's __metadata__ is not a dict")
    if metadata.get(_FORMAT_KEY, _FORMAT_VERSION) != _FORMAT_VERSION:
        raise SerializationError(f"gg.load: {name} has gpugrad format "
                                 f"{metadata[_FORMAT_KEY]!r}; this gpugrad reads format "
                                 f"{_FORMAT_VERSION!r} (upgrade gpugrad)")
    structure = metadata.get(_STRUCTURE_KEY)
    if structure is None:  # a plain safetensors file: a dict in header order
        structure = {"dict": [[{"str": k}, {"tensor": k}] for k in header
                              if k != "__metadata__"]}
    else:
        try:
            structure = json.loads(structure)
        except (TypeError, ValueError) as e:
            raise SerializationError(f"gg.load: {name}: the gpugrad structure in the metadata "
                                     f"is not valid JSON ({e})") from None
    return _Decoder(arrays, target, name).decode(structure)


def _target_backend(map_location):
    if not isinstance(map_location, (str, Device)):
        raise TypeError(f"gg.load: map_location must be a device string or gg.device, got "
                        f"{type(map_location).__name__}")
    return get_backend(map_location)


def _parse_header(data: bytes, name: str) -> dict:
    if len(data) == 0:
        raise SerializationError(f"gg.load: {name} is empty, not a safetensors file")
    hint = _foreign_hint(data)
    if len(data) < 8:
        raise SerializationError(f"gg.load: {name} is too short ({len(data)} bytes) to be a "
                                 f"safetensors file{hint}")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(len(data) - 8, _MAX_HEADER):
        raise SerializationError(f"gg.load: {name} is truncated or not a safetensors file: "
                                 f"its header claims {n} bytes but the file has "
                                 f"{len(data) - 8} after the length field{hint}")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SerializationError(f"gg.load: {name} is not a safetensors file: its header is "
                                 f"not valid JSON ({e}){hint}") from None
    if not isinstance(header, dict):
        raise SerializationError(f"gg.load: {name} is not a safetensors file: its header is "
                                 "not a JSON object")
    return header


def _foreign_hint(data: bytes) -> str:
    if data[:1] == b"\x80" or data[:1] in (b"(", b"}", b"]"):
        return " (it looks like a pickle, e.g. from torch.save; gpugrad never unpickles)"
    if data[:2] == b"PK":
        return " (it looks like a zip archive, e.g. from torch.save; gpugrad reads only " \
               "safetensors)"
    return ""


def _read_tensors(data: bytes, header: dict, name: str) -> dict:
    import safetensors

    try:
        entries = safetensors.deserialize(data)
    except Exception as e:  # the Rust parser reports every malformation its own way
        raise SerializationError(f"gg.load: {name} is corrupt or truncated: {e}") from None
    arrays = {}
    for key, entry in entries:
        tag, shape, raw = entry["dtype"], entry["shape"], entry["data"]
        if tag == "BF16":
            arrays[key] = ("bfloat16", np.frombuffer(raw, np.uint16).reshape(tuple(shape)))
        elif tag in _NP_OF_TAG:
            arr = np.frombuffer(raw, np.dtype(_NP_OF_TAG[tag]).newbyteorder("<"))
            arr = arr.reshape(tuple(shape))
            arrays[key] = (None, arr if arr.flags.aligned else arr.copy())
        else:
            raise SerializationError(f"gg.load: {name}: tensor {key!r} has dtype {tag}, which "
                                     "gpugrad does not support")
    return arrays


class _Decoder:
    """Rebuilds the saved object from structure nodes and the tensor table."""

    def __init__(self, arrays: dict, target, name: str) -> None:
        self.arrays, self.target, self.name = arrays, target, name

    def fail(self, why: str):
        raise SerializationError(f"gg.load: {self.name}: invalid gpugrad structure: {why}")

    def decode(self, node):
        if isinstance(node, dict) and "tensor" in node:
            return self._tensor(node["tensor"], node.get("device"))
        if not isinstance(node, dict) or len(node) != 1:
            self.fail(f"expected a one-key object, got {str(node)[:80]}")
        (kind, value), = node.items()
        if kind == "dict":
            pairs = self._seq(value, kind)
            if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                self.fail("dict items must be [key, value] pairs")
            return {self._key(k): self.decode(v) for k, v in pairs}
        if kind == "list":
            return [self.decode(v) for v in self._seq(value, kind)]
        if kind == "tuple":
            return tuple(self.decode(v) for v in self._seq(value, kind))
        return self._scalar(kind, value)

    def _seq(self, value, kind: str) -> list:
        if not isinstance(value, list):
            self.fail(f"{kind} node must hold a JSON array")
        return value

    def _key(self, node):
        key = self.decode(node)
        if isinstance(key, (dict, list, Tensor)):
            self.fail("a dict key must be a number, string, bool or None")
        return key

    def _scalar(self, kind: str, value):
        check = _SCALARS.get(kind)
        if check is None:
            self.fail(f"unknown node kind {kind!r}")
        if not check(value):
            self.fail(f"bad {kind} value {str(value)[:80]}")
        if kind == "float":
            return float(value)
        return value

    def _tensor(self, key, saved_device):
        if not isinstance(key, str) or key not in self.arrays:
            self.fail(f"reference to a missing tensor {str(key)[:80]!r}")
        special, arr = self.arrays[key]
        backend = self.target or _saved_backend(saved_device)
        if special == "bfloat16":
            np_dt = backend.np_dtype(bfloat16)
            if np_dt is None:
                raise TypeError(f"gg.load: {self.name}: tensor {key!r} is bfloat16, which device "
                                f"{backend.device} does not support; load it with "
                                "map_location='cuda'")
            arr = arr.view(np_dt)
        if backend is cpu_backend:
            return _wrap_array(arr, backend)
        return _wrap_array(backend.asarray(arr), backend)


def _saved_backend(saved_device):
    """The backend of the device a tensor was saved from, or the CPU's when that device is
    missing here (no GPU, fewer GPUs)."""
    if not isinstance(saved_device, str) or saved_device == "cpu":
        return cpu_backend
    try:
        return get_backend(saved_device)
    except (DeviceError, ValueError, TypeError):
        return cpu_backend


_SCALARS = {
    "none": lambda v: v is None,
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool))
    or v in ("nan", "inf", "-inf"),
    "str": lambda v: isinstance(v, str),
}
