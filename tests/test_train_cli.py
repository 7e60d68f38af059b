"""`gpugrad train` refuses bad options with one usage-error line and exit status 2, before
anything runs (no traceback, no silent run)."""

import subprocess
import sys

import pytest

import gpugrad as gg
from gpugrad.__main__ import main


def _usage_error(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as stop:
        main(["train", *argv])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("gpugrad train: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
    (["--epochs", "-2"], "argument --epochs: must be a positive integer, got -2"),
    (["--epochs", "1.5"], "argument --epochs: expected a positive integer, got '1.5'"),
    (["--batch-size", "0"], "argument --batch-size: must be a positive integer, got 0"),
    (["--lr", "-0.1"], "argument --lr: must be a finite number >= 0, got -0.1"),
    (["--lr", "nan"], "argument --lr: must be a finite number >= 0, got nan"),
    (["--lr", "inf"], "argument --lr: must be a finite number >= 0, got inf"),
    (["--nproc", "0"], "argument --nproc: must be a positive integer, got 0"),
    (["--device", "tpu"], "argument --device: unknown device 'tpu'"),
    (["--device", "cpu:1"], "argument --device: cpu device has no index 1"),
])
def test_bad_option_is_a_usage_error(capsys, argv, message):
    assert message in _usage_error(capsys, *argv)


@pytest.mark.skipif(gg.cuda.is_available(), reason="checks the message without a GPU")
def test_unavailable_device_is_a_usage_error(capsys):
    line = _usage_error(capsys, "--device", "cuda")
    assert "argument --device: device cuda:0 requested but CUDA is not available" in line


def test_out_under_a_file_is_a_usage_error(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    line = _usage_error(capsys, "--out", str(tmp_path / "file" / "run"))
    assert "argument --out: cannot make the folder" in line and "is a file" in line
    line = _usage_error(capsys, "--out", str(tmp_path / "file"))
    assert "is a file" in line


def test_good_options_pass_the_checks(capsys, tmp_path, monkeypatch):
    import gpugrad.train as train

    seen = []
    monkeypatch.setattr(train, "run", seen.append)
    main(["train", "--epochs", "1", "--lr", "0", "--device", "cpu", "--nproc", "1",
          "--out", str(tmp_path / "new" / "run")])
    assert seen[0].epochs == 1 and seen[0].lr == 0.0 and seen[0].device == "cpu"


def test_the_command_exits_with_status_2_and_no_traceback():
    done = subprocess.run([sys.executable, "-m", "gpugrad", "train", "--lr", "nan"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == \
        "gpugrad train: error: argument --lr: must be a finite number >= 0, got nan"


def test_nproc_relaunches_through_the_rank_bootstrap(monkeypatch, tmp_path):
    # "-m gpugrad train" (not the interpreter's path) makes the launcher start each rank
    # through gpugrad.distributed._rank, which reports a failing rank.
    from gpugrad.distributed import launch

    calls = []
    monkeypatch.delenv("GPUGRAD_NPROC", raising=False)
    monkeypatch.setattr(launch, "run", lambda n, program: calls.append((n, program)) or 0)
    main(["train", "--nproc", "2", "--epochs", "1", "--out", str(tmp_path)])
    n, program = calls[0]
    assert n == 2 and program[:3] == ["-m", "gpugrad", "train"]
    command = launch.mpiexec_command(n, program, mpiexec="/x/mpiexec")
    assert command[-len(program) - 3:-len(program)] == [sys.executable, "-m",
                                                        "gpugrad.distributed._rank"]
