"""gg.save / gg.load against hostile files, careless callers and killed saves: every bad
file is a SerializationError, objects that need pickle are refused with the way out, a
killed save leaves nothing behind for long, and a load streams the file."""

import io
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file as np_save_file
from safetensors.torch import load_file

import gpugrad as gg
import gpugrad.io as ggio
import gpugrad.nn as nn


def _raw_file(path, header: dict, data: bytes = b"") -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


# -- bad files ---------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["header", "structure"])
def test_deeply_nested_file_is_a_serialization_error(tmp_path, where):
    path = tmp_path / "deep.st"
    deep = "[" * 100_000 + "]" * 100_000
    if where == "header":
        raw = ('{"a": ' + deep + "}").encode()
        path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    else:
        np_save_file({"a": np.zeros(1, np.float32)}, path,
                     metadata={"gpugrad.structure": '{"list": [' * 50_000 + "]}" * 50_000})
    with pytest.raises(gg.SerializationError, match=r"deep\.st.*nests too deeply"):
        gg.load(path)


def test_moderately_nested_structure_still_round_trips(tmp_path):
    obj: list = [1]
    for _ in range(200):
        obj = [obj]
    gg.save(obj, tmp_path / "n.st")
    assert gg.load(tmp_path / "n.st") == obj


def test_unhashable_key_is_a_serialization_error(tmp_path):
    path = tmp_path / "key.st"
    np_save_file({"a": np.zeros(1, np.float32)}, path, metadata={
        "gpugrad.structure": '{"dict": [[{"tuple": [{"list": []}]}, {"none": null}]]}'})
    with pytest.raises(gg.SerializationError, match=r"key\.st.*dict key must be hashable"):
        gg.load(path)


def test_text_mode_file_is_a_serialization_error(tmp_path):
    path = tmp_path / "t.st"
    gg.save({"w": gg.ones(3)}, path)
    with open(path, encoding="latin-1") as f:
        with pytest.raises(gg.SerializationError, match=r"t\.st.*text mode.*'rb'"):
            gg.load(f)
    with pytest.raises(gg.SerializationError, match="text mode"):
        gg.load(io.StringIO("not bytes"))


@pytest.mark.parametrize("header, why", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, "4 bytes for shape"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, "bad shape"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, "starts at byte 4"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": "x"}}, "bad data offsets"),
    ({"a": {"dtype": "Q99", "shape": [1], "data_offsets": [0, 4]}}, "dtype Q99"),
    ({"a": [1]}, "no dtype/shape/offsets"),
    ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, "need 16 bytes"),
])
def test_malformed_tensor_table_is_a_serialization_error(tmp_path, header, why):
    _raw_file(tmp_path / "bad.st", header, b"\0" * 8)
    with pytest.raises(gg.SerializationError, match=why):
        gg.load(tmp_path / "bad.st")


# -- what can be saved -------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: nn.Linear(2, 3),
                                  lambda: gg.optim.SGD([gg.ones(1, requires_grad=True)], 0.1)],
                         ids=["Module", "Optimizer"])
def test_saving_an_object_with_state_says_to_save_its_state_dict(tmp_path, make):
    path = tmp_path / "keep.st"
    gg.save({"w": gg.ones(2)}, path)
    old = path.read_bytes()
    obj = make()
    for bad in (obj, {"model": obj}):
        with pytest.raises(TypeError, match=r"cannot save a (Linear|SGD) object.*"
                                            r"gg\.save\(obj\.state_dict\(\), path\)"):
            gg.save(bad, path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["keep.st"]


def test_arbitrary_object_says_gpugrad_never_pickles(tmp_path):
    class Config:
        pass

    with pytest.raises(TypeError, match="cannot save a value of type Config.*never pickles"):
        gg.save({"cfg": Config()}, tmp_path / "c.st")
    assert not (tmp_path / "c.st").exists()


def test_checkpoint_with_non_tensor_leaves_round_trips_without_pickle(tmp_path):
    model = nn.Linear(3, 2)
    opt = gg.optim.Adam(model.parameters(), lr=1e-3)
    model(gg.ones(4, 3)).sum().backward()
    opt.step()
    ckpt = {"epoch": 7, "config": {"lr": 1e-3, "name": "run", "layers": [3, 2],
                                   "shape": (3, 2), "flag": True, "none": None},
            "model": model.state_dict(), "optim": opt.state_dict()}
    gg.save(ckpt, tmp_path / "ck.st")
    assert b"\x80" not in (tmp_path / "ck.st").read_bytes()[:2]
    out = gg.load(tmp_path / "ck.st")
    assert out["epoch"] == 7 and out["config"] == ckpt["config"]
    assert isinstance(out["config"]["shape"], tuple)
    assert out["optim"]["param_groups"] == ckpt["optim"]["param_groups"]
    for k, v in ckpt["model"].items():
        np.testing.assert_array_equal(out["model"][k].numpy(), v.detach().numpy())


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.uint8,
                                   np.int16, np.uint16, np.int32, np.uint32, np.int64,
                                   np.uint64, np.bool_, np.complex64])
def test_numpy_arrays_round_trip_as_numpy_arrays(tmp_path, dtype):
    a = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    obj = {"a": a, "nested": [a.T, np.asarray(a[0, 0])], "t": gg.ones(2)}
    gg.save(obj, tmp_path / "np.st")
    out = gg.load(tmp_path / "np.st")
    for got, want in ((out["a"], a), (out["nested"][0], a.T), (out["nested"][1], a[0, 0])):
        assert type(got) is np.ndarray and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert isinstance(out["t"], gg.Tensor)


def test_big_endian_numpy_array_round_trips(tmp_path):
    a = np.arange(4, dtype=">i4")
    gg.save([a], tmp_path / "be.st")
    np.testing.assert_array_equal(gg.load(tmp_path / "be.st")[0], a)


# -- loading options ---------------------------------------------------------------------
def test_load_accepts_weights_only_and_map_location_forms(tmp_path):
    path = tmp_path / "m.st"
    gg.save({"w": gg.arange(3.0), "n": [gg.ones(2)]}, path)
    for weights_only in (True, False, None):
        assert gg.load(path, weights_only=weights_only)["w"].device == "cpu"
    assert gg.load(path, map_location="cpu", weights_only=True)["w"].device == "cpu"
    assert gg.load(path, map_location={"cpu": "cpu"})["w"].device == "cpu"
    assert gg.load(path, map_location={"cuda:3": "cpu"})["w"].device == "cpu"
    seen = []

    def hook(t, location):
        seen.append(location)
        return t * 2 if t.shape == (3,) else None

    out = gg.load(path, map_location=hook)
    assert seen == ["cpu", "cpu"]
    np.testing.assert_array_equal(out["w"].numpy(), [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(out["n"][0].numpy(), [1.0, 1.0])
    with pytest.raises(TypeError, match="must return a Tensor or None, got str"):
        gg.load(path, map_location=lambda t, loc: "cpu")
    with pytest.raises(TypeError, match="map_location dict maps saved device strings"):
        gg.load(path, map_location={"cpu": 3})


@pytest.mark.skipif(gg.cuda.is_available(), reason="checks the no-GPU error")
def test_map_location_to_an_absent_gpu_is_an_error(tmp_path):
    gg.save({"w": gg.ones(1)}, tmp_path / "g.st")
    with pytest.raises(Exception, match="(?i)cuda"):
        gg.load(tmp_path / "g.st", map_location="cuda")


def test_pt_suffix_warns_once_and_pytorch_can_read_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(ggio, "_warned_torch_suffix", False)
    sd = {"layer.weight": gg.randn(3, 2), "layer.bias": gg.zeros(3)}
    with pytest.warns(UserWarning, match=r"safetensors format.*torch\.load cannot read it.*"
                                         r"safetensors\.torch\.load_file.*load_torch"):
        gg.save(sd, tmp_path / "model.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gg.save(sd, tmp_path / "model2.pth")  # once per process
        gg.save(sd, tmp_path / "model.safetensors")
    flat = load_file(tmp_path / "model.pt")
    for k, t in sd.items():
        np.testing.assert_array_equal(flat[k].numpy(), t.numpy())
    gg.save({"epoch": 3, "model": sd, "arr": np.arange(2)}, tmp_path / "ck.pth")
    ck = ggio.load_torch(tmp_path / "ck.pth")
    assert ck["epoch"] == 3 and isinstance(ck["model"]["layer.weight"], torch.Tensor)
    np.testing.assert_array_equal(ck["model"]["layer.bias"].numpy(), np.zeros(3))
    assert isinstance(ck["arr"], np.ndarray)


# -- where and how a save writes ----------------------------------------------------------
_KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    import gpugrad as gg, gpugrad.io as ggio

    def write_half_then_die(f, data):
        f.write(bytes(memoryview(data)[: len(data) // 2]))
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    ggio._write_all = write_half_then_die
    gg.save({"w": gg.ones(100_000)}, sys.argv[1])
""")


def _temporaries(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))


def test_temporary_of_a_killed_save_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "ckpt.st"
    gg.save({"w": gg.zeros(3)}, path)
    killed = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(path)], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    left = _temporaries(tmp_path)
    assert len(left) == 1 and left[0].startswith(".ckpt.st.")
    np.testing.assert_array_equal(gg.load(path)["w"].numpy(), np.zeros(3))  # old file intact
    # A live process's temporary, another host's, and another target's are kept.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = ggio._host_tag()
        live = f".ckpt.st.{host}.{sleeper.pid}.0123456789ab.tmp"
        other_host = f".ckpt.st.elsewhere-{host}.{killed_pid()}.0123456789ab.tmp"
        other_target = f".other.st.{host}.{killed_pid()}.0123456789ab.tmp"
        for name in (live, other_host, other_target):
            (tmp_path / name).write_bytes(b"partial")
        gg.save({"w": gg.ones(2)}, path)
        assert _temporaries(tmp_path) == sorted([live, other_host, other_target])
    finally:
        sleeper.kill()
        sleeper.wait()
    gg.save({"w": gg.ones(2)}, path)  # now the sleeper is gone: its temporary goes too
    assert _temporaries(tmp_path) == sorted([other_host, other_target])
    np.testing.assert_array_equal(gg.load(path)["w"].numpy(), np.ones(2))


def killed_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_save_keeps_the_targets_mode(tmp_path):
    path = tmp_path / "ro.st"
    gg.save({"w": gg.ones(1)}, path)
    os.chmod(path, 0o640)
    gg.save({"w": gg.zeros(1)}, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    np.testing.assert_array_equal(gg.load(path)["w"].numpy(), [0.0])


@pytest.mark.skipif(os.name == "nt", reason="symlinks")
def test_save_writes_through_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "latest.st"
    gg.save({"w": gg.ones(1)}, target)
    link = tmp_path / "link.st"
    link.symlink_to(target)
    gg.save({"w": gg.full((2,), 5.0)}, link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(gg.load(target)["w"].numpy(), [5.0, 5.0])
    dangling = tmp_path / "dangling.st"
    dangling.symlink_to(tmp_path / "real" / "new.st")
    gg.save({"w": gg.ones(1)}, dangling)
    assert dangling.is_symlink() and (tmp_path / "real" / "new.st").is_file()


def test_saved_file_is_a_standard_safetensors_file(tmp_path):
    sd = {"b": gg.ones(3, dtype=gg.float64), "a": gg.arange(4), "e": gg.zeros((0, 2))}
    gg.save(sd, tmp_path / "s.safetensors")
    data = (tmp_path / "s.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0  # padded as safetensors' writer pads
    loaded = load_file(tmp_path / "s.safetensors")
    for k, t in sd.items():
        np.testing.assert_array_equal(loaded[k].numpy(), t.numpy())


# -- memory ------------------------------------------------------------------------------
_MEASURE_LOAD = textwrap.dedent("""
    import sys
    import gpugrad as gg

    def peak():  # this process's peak RSS in bytes (ru_maxrss would include the parent's)
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) * 1024

    before = peak()
    out = gg.load(sys.argv[1])
    print(peak() - before, sum(t.numel() * 4 for t in out.values()))
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's VmHWM")
def test_load_peak_memory_is_about_the_tensors_not_twice_the_file(tmp_path):
    path = tmp_path / "big.st"
    gg.save({f"w{i}": gg.ones(2_000_000) for i in range(8)}, path)  # 64 MB
    size = os.path.getsize(path)
    done = subprocess.run([sys.executable, "-c", _MEASURE_LOAD, str(path)], timeout=120,
                          capture_output=True, text=True, check=True)
    grown, tensor_bytes = map(int, done.stdout.split())
    assert tensor_bytes == 64_000_000 and size > tensor_bytes
    # The old reader held the file's bytes and a full copy (1.9x the file).
    assert grown < 1.3 * size, (grown, size)


def test_file_object_holding_two_saves_loads_each_in_turn():
    buf = io.BytesIO()
    gg.save({"a": gg.ones(2)}, buf)
    gg.save([1, gg.zeros(3)], buf)
    buf.seek(0)
    np.testing.assert_array_equal(gg.load(buf)["a"].numpy(), [1.0, 1.0])
    second = gg.load(buf)
    assert second[0] == 1
    np.testing.assert_array_equal(second[1].numpy(), np.zeros(3))


def test_trailing_bytes_after_a_file_on_disk_are_refused(tmp_path):
    path = tmp_path / "extra.st"
    gg.save({"a": gg.ones(2)}, path)
    path.write_bytes(path.read_bytes() + b"junk")
    with pytest.raises(gg.SerializationError, match=r"extra\.st' is corrupt.*need \d+ bytes"):
        gg.load(path)
