"""The GQ-VAE: GDN analysis/synthesis transforms with a Gaussian posterior.

The encoder outputs ``mu`` and ``logvar`` for ``C`` latent channels at stride
16.  Channels are grouped into ``B = C / m`` blocks of ``m`` consecutive
channels; at each latent position every block is one GQ index.  Blocks are
*ordered*: the model is trained with nested dropout (a random prefix of blocks
is kept, the rest are zero, i.e. the prior mean), so decoding only the first
``n`` blocks gives a coarser image at ``n / B`` of the rate.  One model thus
serves a whole quality ladder.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from .layers import GDN
from torch import nn

from .config import STRIDE, GQConfig  # torch-free, so the registry and header checks need no torch
from .quantizer import GaussianQuantizer, kl_bits


def _conv(cin, cout, k=5, s=2):
    return nn.Conv2d(cin, cout, k, stride=s, padding=k // 2)


def _deconv(cin, cout, k=5, s=2):
    return nn.ConvTranspose2d(cin, cout, k, stride=s, padding=k // 2, output_padding=s - 1)


def pad_to_stride(x: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
    """Replicate-pad the bottom/right of (B, C, H, W) to multiples of ``stride``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


class GQVAE(nn.Module):
    def __init__(self, config: GQConfig | None = None):
        super().__init__()
        self.config = c = config or GQConfig()
        N = c.N
        self.g_a = nn.Sequential(
            _conv(3, N), GDN(N), _conv(N, N), GDN(N), _conv(N, N), GDN(N), _conv(N, 2 * c.C),
        )
        self.g_s = nn.Sequential(
            _deconv(c.C, N), GDN(N, inverse=True), _deconv(N, N), GDN(N, inverse=True),
            _deconv(N, N), GDN(N, inverse=True), _deconv(N, 3),
        )
        self.quantizer = GaussianQuantizer(c.m, c.K, c.seed, c.beta)

    # -- posterior ---------------------------------------------------------
    def posterior(self, x: torch.Tensor):
        """``mu, logvar`` of shape (B, C, H/16, W/16) for x in [0, 1] with H, W multiples of 16.

        Under a bf16 autocast (``gqcodec train --precision bf16``) the transforms run in bf16 but
        the last layer, which makes ``mu`` and ``logvar`` (the TDC's KL and the GQ search read
        them), stays in float32; outside autocast this is the plain float32 pass."""
        if self.g_a is None:
            raise ValueError("this model holds only its decoder (a superseded release kept so that its files "
                             "decode); encode with the default model")
        h = self.g_a[:-1](x)
        with torch.autocast(h.device.type, enabled=False):
            h = self.g_a[-1](h.float())
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(self.config.logvar_min, self.config.logvar_max)

    @property
    def decoder_only(self) -> bool:
        """True for a model loaded from a decoder-only weights file (``drop_encoder``)."""
        return self.g_a is None

    def drop_encoder(self) -> "GQVAE":
        """Remove the analysis transform (what a decoder-only weights file leaves out)."""
        self.g_a = None
        return self

    def block_kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Per-block KL in bits, shape (B, blocks, h, w)."""
        b, _, h, w = mu.shape
        m = self.config.m
        return kl_bits(mu.view(b, -1, m, h, w), logvar.view(b, -1, m, h, w), dim=2)

    def block_mask(self, keep: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, C, 1, 1) mask keeping the first keep[i] blocks of sample i."""
        c = self.config
        blk = torch.arange(c.blocks, device=keep.device)
        mask = (blk[None, :] < keep[:, None]).float()  # (B, blocks)
        return mask.repeat_interleave(c.m, dim=1)[:, :, None, None]

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None):
        """Training pass: reconstruction from a reparameterised posterior sample.

        ``keep`` (B,) optionally keeps only a prefix of blocks per sample
        (nested dropout); dropped blocks are set to the prior mean (zero).
        Returns ``{"x_hat", "kl"}`` with ``kl`` the per-block KL in bits.
        """
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        if keep is not None:
            z = z * self.block_mask(keep, *z.shape[-2:])
        # the first synthesis layer in float32 too (it reads the sampled latent; cheap at stride 16)
        with torch.autocast(z.device.type, enabled=False):
            y = self.g_s[0](z)
        return {"x_hat": self.g_s[1:](y).float(), "kl": self.block_kl(mu, logvar), "mu": mu, "logvar": logvar}

    # -- GQ path -----------------------------------------------------------
    def to_rows(self, t: torch.Tensor, n_blocks: int) -> torch.Tensor:
        """(B, C, h, w) -> (B * n_blocks * h * w, m) rows for the first n_blocks blocks."""
        b, _, h, w = t.shape
        m = self.config.m
        t = t[:, : n_blocks * m].reshape(b, n_blocks, m, h, w)
        return t.permute(0, 1, 3, 4, 2).reshape(-1, m)

    def latent_from_indices(self, indices: torch.Tensor, lookup=None) -> torch.Tensor:
        """(B, n, h, w) indices -> (B, C, h, w) latent; blocks beyond n, and -1 entries
        (blocks a prefix-layout file skips at that position), are zero, the prior mean.
        ``lookup`` maps an index tensor to its codewords (default: the model's codebook);
        files with wider indices than the model's codebook pass one."""
        c = self.config
        b, n, h, w = indices.shape
        if n > c.blocks:
            raise ValueError(f"{n} blocks given, the model has {c.blocks}")
        coded = indices >= 0
        z = (lookup or self.quantizer.dequantize)(indices.clamp(min=0))  # (B, n, h, w, m)
        if not bool(coded.all()):
            z = z * coded[..., None].to(z.dtype)
        z = z.permute(0, 1, 4, 2, 3).reshape(b, n * c.m, h, w)
        if n < c.blocks:
            z = F.pad(z, (0, 0, 0, 0, 0, (c.blocks - n) * c.m))
        return z

    @torch.no_grad()
    def encode_indices(self, x: torch.Tensor, n_blocks: int | None = None, beta: float | None = None) -> torch.Tensor:
        """x (B, 3, H, W) in [0, 1], any H, W -> indices (B, n_blocks, ceil(H/16), ceil(W/16))."""
        n_blocks = self.config.blocks if n_blocks is None else int(n_blocks)
        if not 1 <= n_blocks <= self.config.blocks:
            raise ValueError(f"n_blocks must be in [1, {self.config.blocks}], got {n_blocks}")
        mu, logvar = self.posterior(pad_to_stride(x))
        b, _, h, w = mu.shape
        idx = self.quantizer.quantize(self.to_rows(mu, n_blocks), self.to_rows(logvar, n_blocks), beta=beta)
        return idx.view(b, n_blocks, h, w)

    @torch.no_grad()
    def decode_indices(self, indices: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """indices (B, n, h, w) -> x_hat (B, 3, H, W) clamped to [0, 1], cropped to ``size``."""
        x_hat = self.g_s(self.latent_from_indices(indices)).clamp_(0, 1)
        if size is not None:
            x_hat = x_hat[..., : size[0], : size[1]]
        return x_hat

    def bpp_raw(self, n_blocks: int) -> float:
        """Raw GQ rate in bits per pixel with n_blocks blocks per position."""
        return n_blocks * self.config.K_bits / STRIDE**2


def grow_latent(state: dict, config: GQConfig, C: int, seed: int = 0) -> tuple[GQConfig, dict]:
    """Widen a trained model's latent from ``config.C`` to ``C`` channels (new blocks appended).

    The new blocks come last in the nested order, so the grown model decodes
    every prefix of the old blocks exactly as before: the synthesis weights of
    the new channels start at zero.  Their analysis weights start like a fresh
    layer (mean) and at zero log-variance (sigma 1), i.e. the new blocks start
    near the prior and training (TDC) raises their KL to the target.
    Returns the new config and state dict; ``state`` is not modified.
    """
    old = config.C
    if C < old or C % config.m:
        raise ValueError(f"can only grow C to a larger multiple of m={config.m}: {old} -> {C}")
    new_cfg = dataclasses.replace(config, C=C)
    gen = torch.Generator().manual_seed(seed)
    out = dict(state)
    wa, ba = state["g_a.6.weight"], state["g_a.6.bias"]        # (2*old, N, k, k)
    init = torch.empty((2 * C,) + tuple(wa.shape[1:]), dtype=wa.dtype)
    bound = 1.0 / math.sqrt(wa[0].numel())                    # PyTorch's default conv init bound
    init.uniform_(-bound, bound, generator=gen)
    bias = torch.zeros(2 * C, dtype=ba.dtype)
    init[:old], bias[:old] = wa[:old], ba[:old]                # mu of the old blocks
    init[C:C + old], bias[C:C + old] = wa[old:], ba[old:]      # logvar of the old blocks
    init[C + old:] = 0.0                                       # logvar of the new blocks: 0 (sigma 1)
    out["g_a.6.weight"], out["g_a.6.bias"] = init, bias
    ws = state["g_s.0.weight"]                                 # ConvTranspose2d: (old, N, k, k)
    grown = torch.zeros((C,) + tuple(ws.shape[1:]), dtype=ws.dtype)
    grown[:old] = ws
    out["g_s.0.weight"] = grown
    return new_cfg, out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.float(), b.float()).item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)
