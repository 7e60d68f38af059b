"""gg.save / gg.load: safetensors files, nested structure, safety and atomicity."""

import io
import os
import pathlib
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import gpugrad as gg
import gpugrad.io as ggio


def _same(a, b):
    """Deep equality that also checks container types, tensor dtypes and values."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, gg.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def test_round_trip_nested(tmp_path):
    obj = {
        "weights": [gg.randn(2, 3), gg.randn(3).T, gg.tensor(1.5)],
        "meta": {"epoch": 3, "lr": 0.01, "name": "run-1", "done": False, "none": None,
                 "special": (float("nan"), float("inf"), -float("inf"), -0.0)},
        7: {"int_key": gg.arange(5)},
        (False): "bool key",
        1.5: [],
        "empty": {},
        "tuple": (1, (2, [3.0])),
        "big": 2 ** 70,
    }
    path = tmp_path / "nested.gg"
    gg.save(obj, path)
    _same(gg.load(path), obj)
    _same(gg.load(str(path)), obj)


@pytest.mark.parametrize("dtype", [gg.float16, gg.float32, gg.float64, gg.int8, gg.uint8,
                                   gg.int32, gg.int64, gg.bool])
@pytest.mark.parametrize("shape", [(), (0,), (3, 4), (2, 0, 3)])
def test_dtypes_and_shapes(tmp_path, dtype, shape):
    t = gg.tensor((np.random.default_rng(0).normal(size=shape) * 10), dtype=dtype)
    gg.save({"t": t, "nested": [t]}, tmp_path / "t.st")
    out = gg.load(tmp_path / "t.st")
    _same(out, {"t": t, "nested": [t]})


def test_non_contiguous_and_requires_grad(tmp_path):
    w = gg.randn(4, 3, requires_grad=True)
    gg.save({"wt": w.detach().T, "w": w}, tmp_path / "w.st")
    out = gg.load(tmp_path / "w.st")
    np.testing.assert_array_equal(out["wt"].numpy(), w.detach().numpy().T)
    assert not out["w"].requires_grad and out["w"].device == "cpu"


def test_optimizer_state_dict_round_trip_resumes(tmp_path):
    def params():
        gg.manual_seed(3)
        return [gg.randn(3, 2, dtype=gg.float64, requires_grad=True),
                gg.randn(2, dtype=gg.float64, requires_grad=True)]

    def run(opt, ps, n):
        for _ in range(n):
            opt.zero_grad()
            ((ps[0].sum(0) - ps[1]) ** 2).sum().backward()
            opt.step()

    ps = params()
    opt = gg.optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.2}], lr=0.1,
                        amsgrad=True)
    run(opt, ps, 4)
    gg.save({"params": [p.detach() for p in ps], "optim": opt.state_dict()}, tmp_path / "c.st")
    ck = gg.load(tmp_path / "c.st")
    _same(ck["optim"], opt.state_dict())
    qs = [gg.tensor(a, requires_grad=True) for a in ck["params"]]
    resumed = gg.optim.Adam([{"params": qs[:1]}, {"params": qs[1:]}])
    resumed.load_state_dict(ck["optim"])
    run(opt, ps, 4)
    run(resumed, qs, 4)
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_plain_state_dict_opens_in_torch(tmp_path):
    sd = {"layer.weight": gg.randn(4, 3), "layer.bias": gg.zeros(4, dtype=gg.float64),
          "steps": gg.tensor([1, 2], dtype=gg.int64), "mask": gg.tensor([True, False])}
    gg.save(sd, tmp_path / "model.safetensors")
    loaded = load_file(tmp_path / "model.safetensors")
    assert sorted(loaded) == sorted(sd)
    for k, t in sd.items():
        np.testing.assert_array_equal(loaded[k].numpy(), t.numpy())
        assert str(loaded[k].dtype) == "torch." + t.dtype.name


def test_torch_written_file_loads(tmp_path):
    tensors = {"a.weight": torch.randn(3, 2), "b": torch.arange(4), "c": torch.tensor(2.5,
               dtype=torch.float64), "d": torch.ones(2, dtype=torch.float16),
               "e": torch.tensor([True, False]), "f": torch.arange(3, dtype=torch.int32)}
    save_file(tensors, tmp_path / "torch.safetensors", metadata={"format": "pt"})
    out = gg.load(tmp_path / "torch.safetensors")
    assert sorted(out) == sorted(tensors)
    for k, t in tensors.items():
        assert isinstance(out[k], gg.Tensor) and not out[k].requires_grad
        assert out[k].dtype.name == str(t.dtype).replace("torch.", "")
        np.testing.assert_array_equal(out[k].numpy(), t.numpy())


def test_torch_bfloat16_loads_on_cpu(tmp_path):
    pytest.importorskip("ml_dtypes")  # without it: a TypeError naming bfloat16
    x = torch.tensor([1.5, -2.0, 3.140625], dtype=torch.bfloat16)
    save_file({"x": x}, tmp_path / "bf.safetensors")
    out = gg.load(tmp_path / "bf.safetensors", map_location="cpu")["x"]
    assert out.dtype is gg.bfloat16
    np.testing.assert_array_equal(out.float().numpy(), x.float().numpy())


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"x": _Evil(str(marker))}))
    with pytest.raises(gg.SerializationError, match=r"evil\.pt.*pickle"):
        gg.load(path)
    assert not marker.exists()
    torch.save({"w": torch.ones(2)}, tmp_path / "torch.pt")
    with pytest.raises(gg.SerializationError, match=r"torch\.pt.*zip"):
        gg.load(tmp_path / "torch.pt")
    assert issubclass(gg.SerializationError, ValueError)


@pytest.mark.parametrize("cut", [0, 4, 8, 20, -3, -1])
def test_truncated_file(tmp_path, cut):
    path = tmp_path / "full.st"
    gg.save({"a": gg.randn(10), "b": [gg.randn(3)]}, path)
    data = path.read_bytes()
    bad = tmp_path / "cut.st"
    bad.write_bytes(data[:cut] if cut >= 0 else data[:len(data) + cut])
    with pytest.raises(gg.SerializationError, match=r"cut\.st"):
        gg.load(bad)


@pytest.mark.parametrize("content", [b"", os.urandom(64), b"\x10\x00\x00\x00\x00\x00\x00\x00"
                                     b"{not json}      ", b"\x02\x00\x00\x00\x00\x00\x00\x00[]"])
def test_foreign_files(tmp_path, content):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(gg.SerializationError, match="foreign.bin"):
        gg.load(path)


def test_bad_structure_metadata(tmp_path):
    from safetensors.numpy import save_file as np_save_file

    for structure in ("{oops", '{"tensor": "missing"}', '{"set": [1]}', '{"int": "x"}',
                      '{"dict": [[{"list": []}, {"none": null}]]}'):
        np_save_file({"a": np.zeros(2, np.float32)}, tmp_path / "s.st",
                     metadata={"gpugrad.structure": structure})
        with pytest.raises(gg.SerializationError, match="s.st"):
            gg.load(tmp_path / "s.st")


def test_unsupported_dtype_and_newer_format(tmp_path):
    from safetensors.numpy import save_file as np_save_file

    with pytest.raises(TypeError, match="complex128"):
        gg.save({"z": gg.tensor(np.ones(2, np.complex128))}, tmp_path / "z.st")
    assert not (tmp_path / "z.st").exists()
    np_save_file({"a": np.zeros(2, np.float32)}, tmp_path / "v.st",
                 metadata={"gpugrad.format": "99", "gpugrad.structure": '{"none": null}'})
    with pytest.raises(gg.SerializationError, match="format '99'"):
        gg.load(tmp_path / "v.st")


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        gg.load("/nonexistent/dir/file.st")


def test_crash_during_save_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.st"
    gg.save({"w": gg.ones(1000)}, path)
    old = path.read_bytes()

    def write_half_then_fail(f, data):
        f.write(data[: len(data) // 2])
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ggio, "_write_all", write_half_then_fail)
    with pytest.raises(OSError, match="simulated"):
        gg.save({"w": gg.zeros(5000)}, path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["ckpt.st"]
    monkeypatch.undo()
    gg.save({"w": gg.zeros(3)}, path)
    np.testing.assert_array_equal(gg.load(path)["w"].numpy(), np.zeros(3))
    assert os.listdir(tmp_path) == ["ckpt.st"]


@pytest.mark.parametrize("bad", [lambda: 0, {1, 2}, object(), {"a": [gg.ones(1), {1j}]},
                                 {(1, 2): gg.ones(1)}, np.array(["text"]), [b"bytes"]])
def test_unsupported_objects_raise_before_touching_the_file(tmp_path, bad):
    path = tmp_path / "keep.st"
    gg.save({"w": gg.ones(2)}, path)
    old = path.read_bytes()
    with pytest.raises(TypeError, match="cannot save"):
        gg.save(bad, path)
    assert path.read_bytes() == old
    with pytest.raises(TypeError):
        gg.save(bad, tmp_path / "new.st")
    assert os.listdir(tmp_path) == ["keep.st"]


def test_recursive_structure_is_refused(tmp_path):
    a = [gg.ones(1)]
    a.append(a)
    with pytest.raises(ValueError, match="contains itself"):
        gg.save(a, tmp_path / "r.st")
    assert not (tmp_path / "r.st").exists()
    shared = [1]
    gg.save([shared, shared], tmp_path / "dag.st")  # repeated (not recursive) is fine
    assert gg.load(tmp_path / "dag.st") == [[1], [1]]


def test_file_objects_and_map_location(tmp_path):
    buf = io.BytesIO()
    gg.save([gg.arange(3), "x"], buf)
    buf.seek(0)
    out = gg.load(buf, map_location="cpu")
    np.testing.assert_array_equal(out[0].numpy(), [0, 1, 2])
    assert out[1] == "x" and out[0].device == gg.device("cpu")
    buf.seek(0)
    assert gg.load(buf, map_location=gg.device("cpu"))[0].device == "cpu"
    with pytest.raises(TypeError, match="map_location"):
        gg.load(buf, map_location=3)


def test_single_tensor_and_scalars(tmp_path):
    gg.save(gg.tensor([1.0, 2.0]), tmp_path / "t.st")
    _same(gg.load(tmp_path / "t.st"), gg.tensor([1.0, 2.0]))
    gg.save(3, tmp_path / "n.st")
    assert gg.load(tmp_path / "n.st") == 3
    gg.save({"__metadata__": gg.ones(1)}, tmp_path / "m.st")
    _same(gg.load(tmp_path / "m.st"), {"__metadata__": gg.ones(1)})


@pytest.mark.gpu
def test_cuda_tensors_come_back_on_cuda(tmp_path):
    t = gg.randn(3, device="cuda")
    gg.save({"t": t, "n": [t]}, tmp_path / "g.st")
    out = gg.load(tmp_path / "g.st")
    assert out["t"].device == "cuda:0" and out["n"][0].device == "cuda:0"
    np.testing.assert_array_equal(out["t"].numpy(), t.numpy())
    assert gg.load(tmp_path / "g.st", map_location="cpu")["t"].device == "cpu"
    gg.save({"c": gg.ones(2)}, tmp_path / "c.st")
    assert gg.load(tmp_path / "c.st", map_location="cuda")["c"].device == "cuda:0"
