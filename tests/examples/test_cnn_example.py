"""The depthwise separable CNN example: the full run reaches its promised 97% test
accuracy on the digits (about 10-15 s on a 2-core CPU), the shortened run learns, and
`gpugrad train --model cnn` builds and trains that network."""

import gpugrad as gg
from gpugrad import nn
from gpugrad.examples import cnn
from gpugrad.train import build_model, train


def test_full_run_reaches_97_percent():
    m = cnn.main([])
    assert m["test_accuracy"] >= 0.97
    assert m["epochs"] == 15


def test_quick_run_learns():
    m = cnn.main(["--quick", "--seed", "1"])
    assert m["epochs"] == 4
    assert m["test_accuracy"] >= 0.90
    assert m["train_loss"] < 0.5


def test_model_is_depthwise_separable():
    model = cnn.build_cnn(8)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    depthwise = [c for c in convs if c.groups > 1]
    assert depthwise and all(c.groups == c.in_channels == c.out_channels for c in depthwise)
    assert any(c.kernel_size == (1, 1) for c in convs)
    assert model(gg.zeros(5, 64)).shape == (5, 10)


def test_train_command_builds_the_cnn(tmp_path):
    assert isinstance(build_model("cnn"), nn.Sequential)
    summary = train(device="cpu", epochs=2, model_kind="cnn", out=str(tmp_path), quiet=True)
    assert summary["model"] == "cnn" and summary["test_accuracy"] >= 0.6
    assert (tmp_path / "checkpoint.safetensors").exists()
