"""The main job: `gpugrad train` on the digits reaches the promised accuracy."""

import json
import subprocess
import sys

import gpugrad as gg
from gpugrad.train import build_model, train


def test_default_run_reaches_97_percent(tmp_path):
    summary = train(device="cpu", out=str(tmp_path), quiet=True)
    assert summary["test_accuracy"] >= 0.97
    assert summary["device"] == "cpu"
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["test_accuracy"] == summary["test_accuracy"]
    ckpt = gg.load(tmp_path / "checkpoint.safetensors")
    model = build_model("mlp")
    model.load_state_dict(ckpt["model"])
    assert ckpt["epoch"] == 40
    assert ckpt["optimizer"]["param_groups"][0]["lr"] >= 0


def test_command_line_runs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "gpugrad", "train", "--epochs", "2",
                          "--device", "cpu", "--out", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    assert "test accuracy" in out.stdout
    assert (tmp_path / "checkpoint.safetensors").exists()
