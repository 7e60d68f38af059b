"""`gg.save` / `gg.load`: tensors and nested state in the safetensors format, no pickle.

A file is an ordinary safetensors file. Tensors live in its tensor table; a plain dict
of tensors with string keys keeps its keys as tensor names, so a model's state dict
opens in `safetensors.torch.load_file` with the same names. Any other structure (dicts
with int keys, lists, tuples, numbers, strings, bools, None: an optimizer's state dict,
say) is written as JSON into the header metadata under "gpugrad.structure", with each
tensor replaced by a reference to its table entry. Loading parses JSON and raw bytes
only, so a file can never run code.

Structure nodes are one-key JSON objects: {"tensor": name, "device": "cuda:0"},
{"ndarray": name} (a NumPy array, loaded back as one), {"dict": [[key, value], ...]},
{"list": [...]}, {"tuple": [...]}, {"str": s}, {"int": n},
{"float": x | "nan" | "inf" | "-inf"}, {"bool": b}, {"none": null}.

Files are written and read without whole-file buffers: a save streams the header and
then each array's bytes into a temporary file that replaces the target atomically; a
load reads the header, then each tensor's bytes straight into its own array, so its peak
memory is the loaded tensors plus one header (not the file plus a copy).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import secrets
import socket
import stat
import struct
import warnings
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from ._dtype import bfloat16
from .backend import cpu_backend, get_backend
from .device import device as Device
from .errors import DeviceError, SerializationError
from .tensor import Tensor, _wrap_array

__all__ = ["save", "load", "load_torch"]

_FORMAT_KEY = "gpugrad.format"
_STRUCTURE_KEY = "gpugrad.structure"
_FORMAT_VERSION = "1"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
_CHUNK = 1 << 20

# safetensors dtype tag -> NumPy dtype (BF16 is handled apart: NumPy has none).
_NP_OF_TAG = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8,
              "U8": np.uint8, "I16": np.int16, "I32": np.int32, "I64": np.int64,
              "U16": np.uint16, "U32": np.uint32, "U64": np.uint64,
              "BOOL": np.bool_, "C64": np.complex64}
_TAG_OF_NAME = {np.dtype(v).name: k for k, v in _NP_OF_TAG.items()} | {"bfloat16": "BF16"}
_ITEMSIZE = {k: np.dtype(v).itemsize for k, v in _NP_OF_TAG.items()} | {"BF16": 2}

_SAVABLE = {"float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16", "int32",
            "int64", "bool", "complex64"}


# -- saving ------------------------------------------------------------------------------
_warned_torch_suffix = False


def save(obj: object, path: str | os.PathLike | BinaryIO) -> None:
    """Write `obj` (a Tensor, a NumPy array, or dicts/lists/tuples of them and of numbers,
    strings, bools and None) to `path` as a safetensors file.

    The whole object is encoded first, so an unsupported value (a Module, an optimizer,
    any other object: save its `state_dict()`) raises TypeError before the file is
    touched. The file is replaced atomically: written to a temporary file in the same
    directory (named after the target, this host and this process), fsynced and renamed
    over the target; temporaries that a killed save of the same target left behind are
    removed first, once no live process on this host owns them. A target that is a
    symlink is written through (the link stays), and an existing target keeps its
    permission bits, as `torch.save` does. A `.pt`/`.pth` name warns once that the file
    is safetensors, not a pickle. `path` may also be a writable binary file object."""
    try:
        tensors, metadata = _encode(obj)
    except RecursionError:
        raise ValueError("gg.save: the object nests too deeply to be saved") from None
    header = _header_bytes(tensors, metadata)
    if hasattr(path, "write"):
        _write_file(path, header, tensors)
        return
    path = os.fspath(path)
    _warn_torch_suffix(path)
    _atomic_write(path, lambda f: _write_file(f, header, tensors))


def _encode(obj) -> tuple[dict, dict]:
    """The tensor table (name -> little-endian C-contiguous host array) and the header
    metadata of `obj`."""
    tensors: dict[str, np.ndarray] = {}
    if _is_plain_state_dict(obj):
        structure = {"dict": [[{"str": k}, _tensor_node(v, k, tensors)] for k, v in obj.items()]}
    else:
        structure = _Encoder(tensors).encode(obj, "", set())
    metadata = {_FORMAT_KEY: _FORMAT_VERSION,
                _STRUCTURE_KEY: json.dumps(structure, separators=(",", ":"))}
    return tensors, metadata


def _header_bytes(tensors: dict, metadata: dict) -> bytes:
    """The safetensors preamble: the header's length (8 bytes, little-endian) and the
    JSON header, space-padded to 8 bytes; tensors follow in table order."""
    header: dict = {"__metadata__": metadata}
    offset = 0
    for name, arr in tensors.items():
        header[name] = {"dtype": _tag(arr.dtype), "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def _tag(dtype) -> str:
    return "BF16" if "bfloat16" in str(dtype) else _TAG_OF_NAME[dtype.name]


def _write_file(f, header: bytes, tensors: dict) -> None:
    _write_all(f, header)
    for arr in tensors.values():
        _write_all(f, arr.reshape(-1).view(np.uint8))


def _is_plain_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and k != "__metadata__" and isinstance(v, Tensor)
        for k, v in obj.items())


def _host_array(arr: np.ndarray) -> np.ndarray:
    if not arr.flags.c_contiguous:  # (np.ascontiguousarray would turn 0-d into 1-d)
        arr = arr.copy(order="C")
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def _tensor_node(t: Tensor, name: str, tensors: dict) -> dict:
    if t.dtype.name not in _SAVABLE:
        raise TypeError(f"gg.save: cannot save tensor {name!r} of dtype {t.dtype}: the "
                        f"safetensors format has no such dtype")
    tensors[name] = _host_array(t._backend.to_host(t._data))
    return {"tensor": name, "device": str(t.device)}


def _array_node(arr: np.ndarray, name: str, tensors: dict) -> dict:
    if "bfloat16" not in str(arr.dtype) and arr.dtype.name not in _TAG_OF_NAME:
        raise TypeError(f"gg.save: cannot save NumPy array {name!r} of dtype {arr.dtype}: the "
                        "safetensors format has no such dtype")
    tensors[name] = _host_array(arr)
    return {"ndarray": name}


class _Encoder:
    """Turns a nested object into structure nodes, collecting its tensors and arrays under
    dotted path names ("state.0.exp_avg")."""

    def __init__(self, tensors: dict) -> None:
        self.tensors = tensors

    def encode(self, obj, path: str, active: set) -> dict:
        if isinstance(obj, Tensor):
            return _tensor_node(obj, self._name(path), self.tensors)
        if isinstance(obj, np.ndarray):
            return _array_node(obj, self._name(path), self.tensors)
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
    where = path or "top level"
    if not key and not isinstance(value, type) and callable(getattr(value, "state_dict", None)):
        raise TypeError(f"gg.save: cannot save a {type(value).__name__} object (at {where}): "
                        "gpugrad saves data, never pickled objects. Save its state instead: "
                        "gg.save(obj.state_dict(), path), and restore it with "
                        "obj.load_state_dict(gg.load(path))")
    what = "a dict key" if key else "a value"
    raise TypeError(f"gg.save: cannot save {what} of type {type(value).__name__} "
                    f"(at {where}); only tensors, NumPy arrays, dicts, lists, tuples, numbers, "
                    "strings, bools and None can be saved (gpugrad never pickles objects)")


def _write_all(f, data) -> None:
    """Write the bytes-like `data` to the binary file `f` in chunks."""
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        f.write(view[start:start + _CHUNK])


def _warn_torch_suffix(path: str) -> None:
    global _warned_torch_suffix
    if _warned_torch_suffix or not path.lower().endswith((".pt", ".pth")):
        return
    _warned_torch_suffix = True
    warnings.warn(
        f"gg.save: {path!r} is written in the safetensors format (gpugrad never pickles), "
        "not PyTorch's, so torch.load cannot read it whatever its name. In PyTorch read it "
        "with safetensors.torch.load_file(path) (a flat dict of tensors; any file name) or "
        "gpugrad.io.load_torch(path) (the saved structure, with torch tensors); gg.load "
        "reads it as usual. (This warning is shown once.)", UserWarning, stacklevel=3)


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname()) or "host"


def _atomic_write(path: str, write: Callable) -> None:
    if os.path.islink(path):
        path = os.path.realpath(path)  # replace the link's target, not the link
    directory = os.path.dirname(os.path.abspath(path))
    base, host = os.path.basename(path), _host_tag()
    _remove_stale_temporaries(directory, base, host)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None  # a new file: 0o666 less the umask, as open() gives
    while True:
        tmp = os.path.join(directory,
                           f".{base}.{host}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            write(f)
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


def _remove_stale_temporaries(directory: str, base: str, host: str) -> None:
    """Delete the temporaries of saves of `base` from this host whose process is gone
    (killed mid-write: nothing else would ever remove them). Another host's, or a live
    process's, are left alone."""
    pattern = re.compile(re.escape(f".{base}.{host}.") + r"(\d+)\.[0-9a-f]{12}\.tmp")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        found = pattern.fullmatch(name)
        if found and not _process_alive(int(found.group(1))):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def _process_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # (os.kill(pid, 0) would end it on Windows)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, as another user
        return True
    return True


# -- loading -------------------------------------------------------------------------------
def load(path: str | os.PathLike | BinaryIO,
         map_location: str | Device | dict | Callable | None = None, *,
         weights_only: bool | None = None) -> object:
    """Read an object written by `gg.save` (or a plain safetensors file, e.g. from
    `safetensors.torch.save_file`, which loads as a dict of tensors).

    Tensors go to `map_location`: a device ("cpu", "cuda", a gg.device); a dict mapping
    saved devices to devices ({"cuda:1": "cuda:0"}; others load as by default); or a
    callable `f(tensor_on_cpu, saved_device)` returning the tensor to use, or None for
    the default. By default a tensor goes to the device it was saved from when that is
    available here, else to the CPU. Loaded tensors do not require grad; NumPy arrays
    come back as NumPy arrays. `weights_only` is accepted for PyTorch compatibility:
    gpugrad never unpickles, so every load is weights-only.

    The file is read one tensor at a time (peak memory: the loaded tensors plus the
    header). A missing file raises FileNotFoundError; anything that is not a valid
    safetensors file raises gg.SerializationError. `path` may also be a readable binary
    file object (opened with "rb")."""
    make = _tensor_maker(map_location)
    if hasattr(path, "read"):
        name = repr(getattr(path, "name", "<file object>"))
        return _load_from(path, name, make)
    name = repr(os.fspath(path))
    with open(path, "rb") as f:
        return _load_from(f, name, make, path_given=True)


def load_torch(path: str | os.PathLike | BinaryIO) -> object:
    """Read a `gg.save` file in PyTorch: the saved structure with `torch.Tensor`s (on the
    CPU) in place of gpugrad tensors. Needs PyTorch. This is how a PyTorch program reads
    gpugrad checkpoints of any name (`torch.load` reads only pickles);
    `safetensors.torch.load_file(path)` also works, giving the flat tensor table."""
    import torch

    def make(special, arr, saved_device):
        t = torch.from_numpy(arr)
        return t.view(torch.bfloat16) if special == "bfloat16" else t

    if hasattr(path, "read"):
        return _load_from(path, repr(getattr(path, "name", "<file object>")), make)
    with open(path, "rb") as f:
        return _load_from(f, repr(os.fspath(path)), make, path_given=True)


def _load_from(f, name: str, make: Callable, path_given: bool = False) -> object:
    """Decode one saved object from `f` at its position; a file object may go on past
    it (another save follows), a file opened from a path must end with it."""
    if isinstance(f, io.TextIOBase):
        raise _text_mode(name)
    if not (hasattr(f, "seekable") and f.seekable()):
        f = io.BytesIO(_read_exact(f, None, name))
    base = f.tell()
    size = f.seek(0, io.SEEK_END) - base
    f.seek(base)
    header, data_start = _read_header(f, size, name)
    entries = _tensor_entries(header, size - (data_start - base), name, exact=path_given)
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise SerializationError(f"gg.load: {name}: the header's __metadata__ is not a dict")
    if metadata.get(_FORMAT_KEY, _FORMAT_VERSION) != _FORMAT_VERSION:
        raise SerializationError(f"gg.load: {name} has gpugrad format "
                                 f"{metadata[_FORMAT_KEY]!r}; this gpugrad reads format "
                                 f"{_FORMAT_VERSION!r} (upgrade gpugrad)")
    structure = metadata.get(_STRUCTURE_KEY)
    if structure is None:  # a plain safetensors file: a dict in header order
        structure = {"dict": [[{"str": k}, {"tensor": k}] for k in entries]}
    else:
        try:
            structure = json.loads(structure)
        except RecursionError:
            raise _too_deep(name) from None
        except (TypeError, ValueError) as e:
            raise SerializationError(f"gg.load: {name}: the gpugrad structure in the metadata "
                                     f"is not valid JSON ({e})") from None
    reader = _TensorReader(f, data_start, entries, name)
    try:
        return _Decoder(reader, make, name).decode(structure)
    except RecursionError:
        raise _too_deep(name) from None
    finally:
        f.seek(data_start + sum(e[3] - e[2] for e in entries.values()))


def _text_mode(name: str) -> SerializationError:
    return SerializationError(f"gg.load: {name} is opened in text mode; safetensors files are "
                              "binary: open it with open(path, 'rb') (or pass the path)")


def _too_deep(name: str) -> SerializationError:
    return SerializationError(f"gg.load: {name}: the header nests too deeply to be a file "
                              "written by gg.save (corrupt or hostile file)")


def _read_exact(f, n: int | None, name: str):
    data = f.read() if n is None else f.read(n)
    if isinstance(data, str):
        raise _text_mode(name)
    return data


def _read_header(f, size: int, name: str) -> tuple[dict, int]:
    """The parsed JSON header and the file offset where the tensor data starts."""
    if size <= 0:
        raise SerializationError(f"gg.load: {name} is empty, not a safetensors file")
    start = _read_exact(f, min(size, 8), name)
    hint = _foreign_hint(start)
    if size < 8:
        raise SerializationError(f"gg.load: {name} is too short ({size} bytes) to be a "
                                 f"safetensors file{hint}")
    (n,) = struct.unpack("<Q", start)
    if n > min(size - 8, _MAX_HEADER):
        raise SerializationError(f"gg.load: {name} is truncated or not a safetensors file: "
                                 f"its header claims {n} bytes but the file has "
                                 f"{size - 8} after the length field{hint}")
    raw = _read_exact(f, n, name)
    try:
        header = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise _too_deep(name) from None
    except (UnicodeDecodeError, ValueError) as e:
        raise SerializationError(f"gg.load: {name} is not a safetensors file: its header is "
                                 f"not valid JSON ({e}){hint}") from None
    if not isinstance(header, dict):
        raise SerializationError(f"gg.load: {name} is not a safetensors file: its header is "
                                 "not a JSON object")
    return header, f.tell()


def _foreign_hint(data: bytes) -> str:
    if data[:1] == b"\x80" or data[:1] in (b"(", b"}", b"]"):
        return " (it looks like a pickle, e.g. from torch.save; gpugrad never unpickles)"
    if data[:2] == b"PK":
        return " (it looks like a zip archive, e.g. from torch.save; gpugrad reads only " \
               "safetensors)"
    return ""


def _tensor_entries(header: dict, data_size: int, name: str, exact: bool = True) -> dict:
    """name -> (tag, shape, begin, end) for every tensor of the header, checked as the
    safetensors format requires: known dtypes, sizes that match the shapes, and byte
    ranges that tile the data exactly (so a truncated file is caught before reading)."""
    entries = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue

        def bad(why: str, key=key):
            return SerializationError(f"gg.load: {name} is corrupt or truncated: tensor "
                                      f"{key[:80]!r} {why}")

        if not isinstance(info, dict):
            raise bad("has no dtype/shape/offsets entry")
        tag, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if tag not in _ITEMSIZE:
            raise SerializationError(f"gg.load: {name}: tensor {key[:80]!r} has dtype "
                                     f"{str(tag)[:20]}, which gpugrad does not support")
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise bad(f"has a bad shape {str(shape)[:80]}")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(o) is int for o in offsets) and 0 <= offsets[0] <= offsets[1]):
            raise bad(f"has bad data offsets {str(offsets)[:80]}")
        begin, end = offsets
        if end - begin != math.prod(shape) * _ITEMSIZE[tag]:
            raise bad(f"has {end - begin} bytes for shape {tuple(shape)} of {tag}")
        entries[key] = (tag, tuple(shape), begin, end)
    position = 0
    for key, (_, _, begin, end) in sorted(entries.items(), key=lambda e: e[1][2:]):
        if begin != position:
            raise SerializationError(f"gg.load: {name} is corrupt: tensor {key[:80]!r} starts "
                                     f"at byte {begin} of the data, expected {position}")
        position = end
    if position > data_size or (exact and position != data_size):
        raise SerializationError(f"gg.load: {name} is corrupt or truncated: its tensors need "
                                 f"{position} bytes of data but the file has {data_size}")
    return entries


class _TensorReader:
    """Reads one tensor at a time from the file straight into a fresh array."""

    def __init__(self, f, data_start: int, entries: dict, name: str) -> None:
        self.f, self.data_start, self.entries, self.name = f, data_start, entries, name

    def __contains__(self, key) -> bool:
        return key in self.entries

    def read(self, key: str) -> tuple[str | None, np.ndarray]:
        """(special, array): special is "bfloat16" for BF16 data (then the array holds its
        raw uint16 bits), else None."""
        tag, shape, begin, end = self.entries[key]
        buf = np.empty(end - begin, dtype=np.uint8)
        self.f.seek(self.data_start + begin)
        view, done = memoryview(buf), 0
        while done < buf.size:
            if hasattr(self.f, "readinto"):
                got = self.f.readinto(view[done:])
            else:
                chunk = _read_exact(self.f, buf.size - done, self.name)
                got = len(chunk)
                view[done:done + got] = chunk
            if not got:
                raise SerializationError(f"gg.load: {self.name} is truncated: tensor "
                                         f"{key[:80]!r} ends past the end of the file")
            done += got
        if tag == "BF16":
            return "bfloat16", buf.view(np.uint16).reshape(shape)
        return None, buf.view(np.dtype(_NP_OF_TAG[tag]).newbyteorder("<")).reshape(shape)


def _tensor_maker(map_location) -> Callable:
    """make(special, host_array, saved_device) -> Tensor, placing it per `map_location`."""
    if map_location is None:
        return lambda special, arr, saved: _place(special, arr, _saved_backend(saved))
    if isinstance(map_location, (str, Device)):
        target = get_backend(map_location)
        return lambda special, arr, saved: _place(special, arr, target)
    if isinstance(map_location, dict):
        for k, v in map_location.items():
            if not isinstance(k, str) or not isinstance(v, (str, Device)):
                raise TypeError("gg.load: a map_location dict maps saved device strings to "
                                f"devices, got {k!r}: {v!r}")
        mapped = {k: get_backend(v) for k, v in map_location.items()}

        def by_dict(special, arr, saved):
            backend = mapped.get(saved if isinstance(saved, str) else "cpu")
            return _place(special, arr, backend or _saved_backend(saved))

        return by_dict
    if callable(map_location):
        def by_callable(special, arr, saved):
            out = map_location(_place(special, arr, cpu_backend),
                               saved if isinstance(saved, str) else "cpu")
            if out is None:
                return _place(special, arr, _saved_backend(saved))
            if not isinstance(out, Tensor):
                raise TypeError("gg.load: a map_location callable must return a Tensor or "
                                f"None, got {type(out).__name__}")
            return out

        return by_callable
    raise TypeError("gg.load: map_location must be a device string, a gg.device, a dict or a "
                    f"callable, got {type(map_location).__name__}")


def _place(special, arr: np.ndarray, backend) -> Tensor:
    if special == "bfloat16":
        np_dt = backend.np_dtype(bfloat16)
        if np_dt is None:
            raise TypeError(f"gg.load: a bfloat16 tensor cannot live on {backend.device} "
                            "here; load it with map_location='cuda'")
        arr = arr.view(np_dt)
    if backend is cpu_backend:
        return _wrap_array(arr if arr.flags.aligned else arr.copy(), backend)
    return _wrap_array(backend.asarray(arr), backend)


class _Decoder:
    """Rebuilds the saved object from structure nodes, reading each tensor when reached."""

    def __init__(self, reader: _TensorReader, make: Callable, name: str) -> None:
        self.reader, self.make, self.name = reader, make, name

    def fail(self, why: str):
        raise SerializationError(f"gg.load: {self.name}: invalid gpugrad structure: {why}")

    def decode(self, node):
        if isinstance(node, dict) and "tensor" in node:
            special, arr = self._read(node["tensor"])
            return self.make(special, arr, node.get("device"))
        if not isinstance(node, dict) or len(node) != 1:
            self.fail(f"expected a one-key object, got {str(node)[:80]}")
        (kind, value), = node.items()
        if kind == "ndarray":
            special, arr = self._read(value)
            return arr if special is None else _bfloat16_array(arr, self.name)
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

    def _read(self, key):
        if not isinstance(key, str) or key not in self.reader:
            self.fail(f"reference to a missing tensor {str(key)[:80]!r}")
        return self.reader.read(key)

    def _seq(self, value, kind: str) -> list:
        if not isinstance(value, list):
            self.fail(f"{kind} node must hold a JSON array")
        return value

    def _key(self, node):
        key = self.decode(node)
        try:
            hash(key)
        except TypeError:
            self.fail(f"a dict key must be hashable (a number, string, bool, None or a tuple "
                      f"of them), got a {type(key).__name__}")
        if isinstance(key, (Tensor, np.ndarray)):
            self.fail("a dict key must be a number, string, bool or None")
        return key

    def _scalar(self, kind: str, value):
        check = _SCALARS.get(kind)
        if check is None:
            self.fail(f"unknown node kind {str(kind)[:40]!r}")
        if not check(value):
            self.fail(f"bad {kind} value {str(value)[:80]}")
        if kind == "float":
            return float(value)
        return value


def _bfloat16_array(bits: np.ndarray, name: str) -> np.ndarray:
    np_dt = cpu_backend.np_dtype(bfloat16)
    if np_dt is None:
        raise TypeError(f"gg.load: {name} holds a bfloat16 NumPy array, which needs the "
                        "ml_dtypes package")
    return bits.view(np_dt)


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
