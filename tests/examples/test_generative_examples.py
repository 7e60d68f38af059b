"""The vae, hypernet, deq and maml examples: shortened (--quick) runs reach their goals."""

import struct
import zlib

import numpy as np
import torch

import gpugrad as gg
from gpugrad.examples import deq, hypernet, maml, vae


def test_vae_reconstruction_falls_and_writes_png(tmp_path):
    m = vae.main(["--quick", "--out", str(tmp_path)])
    assert m["recon_last"] < 0.85 * m["recon_first"]
    assert 0 < m["kl_last"] < 20
    data = (tmp_path / "samples.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    assert (w, h) == (8 * 33 + 1, 8 * 33 + 1)


def test_png_writer_round_trip(tmp_path):
    img = np.random.default_rng(0).uniform(size=(5, 7))
    path = vae.write_png(tmp_path / "x.png", img)
    data = path.read_bytes()
    # Chunks: IHDR (13 bytes) at offset 8, then IDAT; check every CRC and the pixels.
    pos, chunks = 8, {}
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF
        chunks[tag] = body
        pos += 12 + n
    if chunks[b"IHDR"][8:10] != b"\x08\x00":  # matplotlib writes RGBA; only check ours
        return
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(5, 8)
    assert (raw[:, 0] == 0).all()
    np.testing.assert_array_equal(raw[:, 1:], (img * 255).round().astype(np.uint8))


def test_hypernet_loss_falls_well_below_initial():
    m = hypernet.main(["--quick"])
    assert m["final_test_mse"] < m["initial_test_mse"] / 20


def test_deq_trains_and_matches_unrolled_gradient():
    m = deq.main(["--quick"])
    assert m["grad_check_max_abs_diff"] < 1e-4
    assert m["test_accuracy"] > 0.85
    assert m["mean_forward_iters"] < 30 and m["mean_backward_iters"] < 30


def test_maml_meta_training_lowers_post_adaptation_loss():
    m = maml.main(["--quick"])
    assert m["post_adaptation_mse_after"] < 0.75 * m["post_adaptation_mse_before"]


def test_maml_meta_gradient_matches_torch():
    """The second-order meta-gradient (through the batched inner step) equals PyTorch's,
    computed one task at a time."""
    gg.manual_seed(1)
    params = [p.detach().to(gg.float64).requires_grad_(True) for p in maml.init_params(5, "cpu")]
    rng = np.random.default_rng(0)
    xs, ys, xq, yq = (a.astype(np.float64) for a in maml.sample_tasks(rng, 3, 4, 6))
    fast = maml.adapt(params, gg.tensor(xs), gg.tensor(ys), 0.1, 3, create_graph=True)
    meta = maml.task_losses(fast, gg.tensor(xq), gg.tensor(yq)).sum()
    got = gg.autograd.grad(meta, params)

    tp = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in params]

    def net(ws, x):
        h = x
        for i in range(0, len(ws), 2):
            h = h @ ws[i].T + ws[i + 1]
            if i < len(ws) - 2:
                h = torch.relu(h)
        return h

    total = 0
    for t in range(3):
        inner = ((net(tp, torch.tensor(xs[t])) - torch.tensor(ys[t])) ** 2).mean()
        g = torch.autograd.grad(inner, tp, create_graph=True)
        adapted = [p - 0.1 * gi for p, gi in zip(tp, g)]
        total = total + ((net(adapted, torch.tensor(xq[t])) - torch.tensor(yq[t])) ** 2).mean()
    expected = torch.autograd.grad(total, tp)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)
