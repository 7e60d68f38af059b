"""A variational autoencoder on the 8x8 digits: the reparameterization trick at work.

The encoder maps an image x to (μ, log σ²); a latent z = μ + σ·ε (ε ~ N(0, I)) is drawn
with `gg.distributions.Normal(μ, σ).rsample()`, so the gradient of the loss reaches μ and
σ (∂z/∂μ = 1, ∂z/∂σ = ε); the decoder maps z to pixel logits. The loss is the negative
ELBO: binary cross-entropy of the reconstruction (pixels in [0, 1]) plus
KL(N(μ, σ²) ‖ N(0, I)). Samples decoded from the prior are written as a PNG grid.

    python -m gpugrad.examples.vae [--epochs 40] [--out runs/vae] [--quick]
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import numpy as np

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from gpugrad.distributions import Normal, kl_divergence
from gpugrad.examples._common import parser, progress, report


def load_digits_01() -> np.ndarray:
    """All 1797 digits as float32 rows of 64 pixels in [0, 1] (gpugrad.train.load_digits
    standardises the pixels, which suits a classifier but not a Bernoulli decoder)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise SystemExit("this example needs scikit-learn (it ships the digits data set)") from e
    return (load_digits().data / 16.0).astype(np.float32)


class VAE(nn.Module):
    """Encoder 64 -> hidden -> (μ, log σ²) of size `latent`; decoder latent -> hidden -> 64."""

    def __init__(self, hidden: int = 128, latent: int = 8) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent)
        self.log_var = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 64))

    def encode(self, x: gg.Tensor) -> Normal:
        """The approximate posterior q(z | x) = N(μ(x), σ(x)²)."""
        h = self.encoder(x)
        return Normal(self.mu(h), gg.exp(0.5 * self.log_var(h)))

    def forward(self, x: gg.Tensor) -> tuple[gg.Tensor, Normal]:
        q = self.encode(x)
        return self.decoder(q.rsample()), q


def vae_loss(logits: gg.Tensor, x: gg.Tensor, q: Normal) -> tuple[gg.Tensor, gg.Tensor]:
    """(reconstruction, KL), each summed over pixels/latents and averaged over the batch."""
    n = x.shape[0]
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
    prior = Normal(gg.zeros_like(q.loc), gg.ones_like(q.scale))
    kl = kl_divergence(q, prior).sum() / n
    return recon, kl


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write a 2-D array in [0, 1] as an 8-bit grayscale PNG, with matplotlib when it is
    installed and otherwise with a few lines of zlib (the format is chunks with CRCs)."""
    pixels = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        plt.imsave(path, pixels, cmap="gray", vmin=0, vmax=255)
        return path
    except ImportError:
        pass
    h, w = pixels.shape

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 per row
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit grayscale
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    return path


def image_grid(images: np.ndarray, rows: int, scale: int = 4, pad: int = 1) -> np.ndarray:
    """Tile (n, 8, 8) images into one array, each enlarged `scale` times, with padding."""
    n, h, w = images.shape
    cols = -(-n // rows)
    cell_h, cell_w = h * scale + pad, w * scale + pad
    grid = np.ones((rows * cell_h + pad, cols * cell_w + pad), dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        big = np.kron(img, np.ones((scale, scale), dtype=np.float32))
        grid[pad + r * cell_h: pad + r * cell_h + h * scale,
             pad + c * cell_w: pad + c * cell_w + w * scale] = big
    return grid


def main(argv: list[str] | None = None) -> dict:
    """Train the VAE; returns the metrics (also printed as a table)."""
    p = parser("A variational autoencoder on the 8x8 digits (reparameterization trick).")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--latent", type=int, default=8)
    p.add_argument("--out", default="runs/vae", help="folder for the sample grid PNG")
    args = p.parse_args(argv)
    epochs = min(args.epochs, 5) if args.quick else args.epochs
    device = str(gg.device(args.device)) if args.device else str(gg.default_device())
    gg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    x_all = gg.tensor(load_digits_01(), device=device)
    n = x_all.shape[0]
    model = VAE(latent=args.latent).to(device)
    optimizer = gg.optim.Adam(model.parameters(), lr=args.lr)
    history = []
    start = time.perf_counter()
    with progress(epochs, "vae") as update:
        for _ in range(epochs):
            perm = gg.tensor(rng.permutation(n), device=device)
            tot_recon = gg.zeros((), device=device)
            tot_kl = gg.zeros((), device=device)
            for i in range(0, n, args.batch_size):
                x = x_all[perm[i:i + args.batch_size]]
                logits, q = model(x)
                recon, kl = vae_loss(logits, x, q)
                optimizer.zero_grad()
                (recon + kl).backward()
                optimizer.step()
                tot_recon = tot_recon + recon.detach() * x.shape[0]
                tot_kl = tot_kl + kl.detach() * x.shape[0]
            history.append({"recon": tot_recon.item() / n, "kl": tot_kl.item() / n})
            update(f"recon {history[-1]['recon']:.2f}  kl {history[-1]['kl']:.2f}")
    seconds = time.perf_counter() - start

    with gg.no_grad():
        z = gg.randn(64, args.latent, device=device)
        samples = gg.sigmoid(model.decoder(z)).cpu().numpy().reshape(64, 8, 8)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png = write_png(out / "samples.png", image_grid(samples, rows=8))
    metrics = {
        "epochs": epochs,
        "recon_first": history[0]["recon"],
        "recon_last": history[-1]["recon"],
        "kl_last": history[-1]["kl"],
        "neg_elbo_last": history[-1]["recon"] + history[-1]["kl"],
        "samples_png": str(png),
        "seconds": seconds,
        "device": device,
    }
    report("vae", metrics)
    return metrics


if __name__ == "__main__":
    main()
