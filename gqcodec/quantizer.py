"""Gaussian Quant: codebook search and the target divergence constraint (TDC).

GQ rule (Xu et al., arXiv 2512.06609): for a block posterior N(mu, diag(sigma^2))
pick the codeword ``c`` of a fixed standard-normal codebook maximising

    log N(c; mu, sigma) - beta * log N(c; 0, I)

With ``w = 1 / sigma^2`` this is, up to a per-block constant,

    score(c) = sum_j mu_j w_j c_j - 0.5 (w_j - beta) c_j^2
             = <[mu * w, -0.5 (w - beta)], [c, c^2]>

so the search is one (N, 2m) x (2m, K) matmul followed by an argmax, done in
cache-sized tiles that keep only per-sub-block maxima (memory of a few MiB,
never N * K), with a float64 re-score of the candidates that makes the result
the exact float64 argmax (see ``quantize`` and docs/performance.md).
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from .codebook import codebook as make_codebook
from .codebook import codebook_hash

LOG2E = 1.0 / math.log(2.0)
DEFAULT_MEMORY_BUDGET = 64 << 20  # bytes: rows per search block = budget // (4 K)
# CPU search tiles (tuned with tools/bench.py): a (TILE_CODES x rows) float32 score tile
# of TILE_ROWS x TILE_CODES x 4 bytes = 1 MiB stays in L2; only the max of each sub-block
# of min(SUBBLOCK, max(4, K / 512)) codewords leaves the tile (smaller sub-blocks for small K
# keep the float64 re-scoring cheap).  Small codebooks get more rows per tile (same bytes).
TILE_ROWS = 256
TILE_CODES = 1024
SUBBLOCK = 32


def _stamp(t: torch.Tensor):
    """What tells whether a tensor changed since it was last seen: its version counter, or for an
    inference tensor (which has none) the float64 sum of its values."""
    try:
        return t._version
    except RuntimeError:
        return float(t.double().sum())


def kl_bits(mu: torch.Tensor, logvar: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) in bits, summed over ``dim``."""
    return 0.5 * LOG2E * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim)


class GaussianQuantizer(nn.Module):
    """Fixed-codebook vector quantizer for Gaussian posteriors.

    ``quantize(mu, logvar) -> indices`` and ``dequantize(indices) -> codewords``
    work on (N, dim) rows; ``codebook`` is a (K, dim) float32 buffer.
    """

    def __init__(self, dim: int, codebook_size: int, seed: int = 0, beta: float = 1.0,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET):
        super().__init__()
        self.dim = int(dim)
        self.codebook_size = int(codebook_size)
        self.seed = int(seed)
        self.beta = float(beta)
        self.memory_budget = int(memory_budget)
        cb = make_codebook(self.seed, self.codebook_size, self.dim)
        self.register_buffer("codebook", cb, persistent=False)
        self.register_buffer("keys", torch.cat([cb, cb * cb], dim=1), persistent=False)
        self.register_buffer("key_bound", self.keys.abs().amax(0), persistent=False)  # (2m,)
        self._reuse = None   # the bias tensor whose widened key table searches keep (:meth:`reusing`)
        self._biased = None  # (bias, its version, device, keys with the bias column, their bounds, bias64)

    @contextlib.contextmanager
    def reusing(self, bias: torch.Tensor):
        """Within the block, searches under this very ``bias`` tensor build its widened key table once
        and reuse it (many small row sets under one bias: block 0's wavefronts); an in-place change of
        the tensor is noticed. The table is dropped on leaving, so none outlives its searches."""
        self._reuse, self._biased = bias, None
        try:
            yield self
        finally:
            self._reuse = self._biased = None

    @property
    def bits(self) -> float:
        return math.log2(self.codebook_size)

    def codebook_hash(self) -> str:
        return codebook_hash(self.seed, self.codebook_size, self.dim)

    def chunk_rows(self, memory_budget: int | None = None) -> int:
        """Rows whose full (rows, K) float32 score matrix fits in the budget (the pre-tiling search's rule,
        kept for tools/bench.py's reference implementation)."""
        budget = self.memory_budget if memory_budget is None else int(memory_budget)
        return max(1, budget // (4 * self.codebook_size))

    def search_bytes_per_row(self, device: torch.device | str = "cpu") -> int:
        """Temporary bytes the search holds per row of a row block on ``device``: the float32 score tile,
        the float32 sub-block maxima and their candidate mask, and the float64 re-score of one sub-block."""
        _, kc, sub = self._tile_shape(torch.device(device), 1)
        return 4 * kc + 5 * (self.codebook_size // sub) + 8 * sub * self.dim

    def search_rows(self, memory_budget: int | None = None, device: torch.device | str = "cpu") -> int:
        """Rows per search block such that the block's temporaries fit in the memory budget."""
        budget = self.memory_budget if memory_budget is None else int(memory_budget)
        return max(1, budget // self.search_bytes_per_row(device))

    def queries(self, mu: torch.Tensor, logvar: torch.Tensor, beta: float | None = None) -> torch.Tensor:
        beta = self.beta if beta is None else float(beta)
        w = torch.exp(-logvar.float())
        return torch.cat([mu.float() * w, -0.5 * (w - beta)], dim=1)

    def _tile_shape(self, device: torch.device, rows: int) -> tuple[int, int, int]:
        """(row block, codewords per tile, codewords per sub-block) for a search on ``device``."""
        K = self.codebook_size
        sub = min(SUBBLOCK, K, max(4, K >> 9))
        if device.type == "cpu":
            kc = min(TILE_CODES, K)
            return max(1, min(rows, TILE_ROWS * TILE_CODES // kc)), kc, sub
        return rows, min(K, 1 << 16), sub  # accelerators: large tiles, same exact algorithm

    @torch.no_grad()
    def quantize(self, mu: torch.Tensor, logvar: torch.Tensor, beta: float | None = None,
                 memory_budget: int | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
        """Indices (N,) int64 of the GQ-optimal codeword for each row of (N, dim) inputs.

        ``bias`` (K,) optionally adds a per-codeword term to every row's score
        (rate-distortion optimised quantization: ``gamma * ln P(index)`` under the
        entropy coder's prior favours cheap indices among near-equal candidates).

        The result is the argmax of the float64 score (lowest index on exact
        ties).  The search is a float32 matmul in cache-sized tiles that keeps
        only the maximum of each sub-block of consecutive codewords; all
        sub-blocks whose float32 maximum is within a proven rounding bound of
        the row's best are then re-scored in float64 (almost always one).
        ``memory_budget`` bounds the temporaries of a row block (``search_rows``), not K.
        """
        if mu.shape != logvar.shape or mu.dim() != 2 or mu.shape[1] != self.dim:
            raise ValueError(f"expected mu, logvar of shape (N, {self.dim}), got {tuple(mu.shape)}, {tuple(logvar.shape)}")
        beta = self.beta if beta is None else float(beta)
        n = mu.shape[0]
        out = torch.empty(n, dtype=torch.int64, device=mu.device)
        if n == 0:
            return out
        budget = self.memory_budget if memory_budget is None else int(memory_budget)
        if bias is not None:
            bias = torch.as_tensor(bias)
            if bias.shape != (self.codebook_size,):
                raise ValueError(f"bias must have shape ({self.codebook_size},), got {tuple(bias.shape)}")
        with torch.inference_mode():
            self._search(mu, logvar, beta, budget, out, bias)
        return out

    def _search(self, mu, logvar, beta, budget, out, bias=None):
        K, m = self.codebook_size, self.dim
        dev = mu.device
        keys = self.keys.to(dev)
        kmax = self.key_bound.to(dev)
        extra = 0  # the bias rides along as one more key column, matched by a query column of ones
        if bias is not None:
            hit = self._biased  # set only for the bias of an open ``reusing`` block
            if hit is not None and hit[0] is bias and hit[1] == _stamp(bias) and hit[2] == dev:
                keys, kmax, bias64 = hit[3:]
            else:
                if not bool(torch.isfinite(bias).all()):
                    raise ValueError("bias must be finite")
                bias64 = bias.to(dev, torch.float64)
                bias32 = bias64.float()
                keys = torch.cat([keys, bias32[:, None]], dim=1)
                kmax = torch.cat([kmax, bias32.abs().amax()[None]])
                if bias is self._reuse:
                    self._biased = (bias, _stamp(bias), dev, keys, kmax, bias64)
            extra = 1
        cb = self.codebook.to(dev)
        R, kc, sub = self._tile_shape(dev, self.search_rows(budget, dev))
        R = min(R, mu.shape[0])
        nsub, step = K // sub, kc // sub
        tiles = [keys[j:j + kc] for j in range(0, K, kc)]  # views, no copies
        tile = torch.empty(kc, R, dtype=torch.float32, device=dev)
        smax = torch.empty(nsub, R, dtype=torch.float32, device=dev)
        offs = torch.arange(sub, device=dev)
        # unit roundoff of the float32 matmul: TF32 ("high") or bf16 ("medium") matmuls widen the
        # bound, so the result stays exact, only with more candidates to re-score
        u = {"highest": 2.0 ** -24, "high": 2.0 ** -11}.get(torch.get_float32_matmul_precision(), 2.0 ** -8)
        pair_chunk = max(1, min(budget // 4, 1 << 20) // (sub * m * 8))  # pairs re-scored at once
        for i in range(0, mu.shape[0], R):
            qb = self.queries(mu[i:i + R], logvar[i:i + R], beta)  # (r, 2m) float32
            if extra:
                qb = torch.cat([qb, torch.ones(qb.shape[0], 1, dtype=qb.dtype, device=dev)], dim=1)
            r = qb.shape[0]
            if r != R:
                tile = torch.empty(kc, r, dtype=torch.float32, device=dev)
                smax = torch.empty(nsub, r, dtype=torch.float32, device=dev)
            qt = qb.t()  # (2m, r) view
            for j, kt in enumerate(tiles):
                torch.mm(kt, qt, out=tile)
                torch.amax(tile.view(step, sub, r), dim=1, out=smax[j * step:(j + 1) * step])
            # |fp32 score - exact score| <= (2m + 8) u sum_i qbound_i max_c |key_i(c)|:
            # exp (<= 4 ulp), the products and w - beta in q, c^2 in the keys, a 2m-term dot
            # product.  Doubled for safety, and doubled again since two scores are compared.
            qbound = qb.abs()
            qbound[:, m:2 * m].mul_(2.0).add_(abs(beta))  # |w - beta| + |beta| >= max(|w|, |beta|)
            slack = (qbound @ kmax).mul_(4.0 * (2 * m + 8 + extra) * u)
            thr = smax.amax(0).sub_(slack)
            cand_sb, cand_row = (smax >= thr).nonzero(as_tuple=True)
            # exact re-score of the candidate sub-blocks in float64
            mu64, lv64 = mu[i:i + r].float().double(), logvar[i:i + r].float().double()
            w64 = torch.exp(-lv64)
            a64, b64 = mu64 * w64, 0.5 * (w64 - beta)
            best_v = torch.full((r,), -math.inf, dtype=torch.float64, device=dev)
            best_i = torch.full((r,), K, dtype=torch.int64, device=dev)
            for p in range(0, cand_sb.numel(), pair_chunk):
                rr = cand_row[p:p + pair_chunk]
                cw = cand_sb[p:p + pair_chunk, None] * sub + offs  # (P, sub) codeword ids
                c = cb[cw].double()  # (P, sub, m)
                s = torch.bmm(c, a64[rr, :, None])[:, :, 0]  # (P, sub)
                s -= torch.bmm(c.mul_(c), b64[rr, :, None])[:, :, 0]
                if extra:
                    s += bias64[cw]
                v, k = s.max(1)
                k = cw.gather(1, k[:, None])[:, 0]
                new_v = best_v.scatter_reduce(0, rr, v, "amax", include_self=True)
                best_i = torch.where(best_v == new_v, best_i, K)
                best_i.scatter_reduce_(0, rr, torch.where(v == new_v[rr], k, K), "amin", include_self=True)
                best_v = new_v
            # rows with no candidate (non-finite input) get index 0, like argmax over NaN scores
            out[i:i + r] = best_i.masked_fill_(best_i == K, 0)

    def dequantize(self, indices: torch.Tensor) -> torch.Tensor:
        """Codewords (..., dim) for integer indices of any shape."""
        return self.codebook[indices.long()]

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor):
        """``(codewords, indices)`` for (N, dim) inputs (no gradient through the search)."""
        idx = self.quantize(mu, logvar)
        return self.dequantize(idx), idx


class TDC(nn.Module):
    """Target divergence constraint: pushes every block's KL (bits) into ``log2 K +- tol``.

    ``loss(kl)`` weights each block's KL by ``lam_max`` above the band, 1 inside
    and ``lam_min`` below it, times an overall multiplier ``lam``; ``update(kl)``
    adapts the three multipliers after each optimiser step (design.md section 1).

    Extensions over the reference rule, all optional:

    * ``groups`` > 1 keeps one set of multipliers per block group (the block
      index along the channel axis); ``kl`` then has shape (B, groups, ...).
      With nested block dropout the first blocks are worth far more to the
      decoder than the last, and a single multiplier set leaves block 0 ~10 bits
      above the band and the last blocks ~4 bits below it.
    * ``quantile`` < 1 adapts ``lam_max``/``lam_min`` on the upper/lower
      ``quantile`` of the block KLs instead of the max/min (the reference rule,
      ``quantile=1``): with ~10^4 blocks per batch the max is an outlier that is
      always above the band, which drives ``lam_max`` to its cap.
    * ``lam_max_cap`` bounds ``lam_max`` (reference: 1e3).
    """

    def __init__(self, target_bits: float, tol: float = 0.5, rate: float = 1.01,
                 lam_init: float = 1.0, lam_max_cap: float = 1e3, quantile: float = 1.0, groups: int = 1):
        super().__init__()
        if not 0.5 < quantile <= 1.0:
            raise ValueError(f"quantile must be in (0.5, 1], got {quantile}")
        self.quantile = float(quantile)
        self.target = float(target_bits)
        self.tol = float(tol)
        self.rate = float(rate)
        self.lam_max_cap = float(lam_max_cap)
        self.groups = int(groups)
        self.register_buffer("lam", torch.full((self.groups,), float(lam_init)))
        self.register_buffer("lam_max", torch.ones(self.groups))
        self.register_buffer("lam_min", torch.ones(self.groups))

    @property
    def band(self):
        return self.target - self.tol, self.target + self.tol

    def _grouped(self, kl: torch.Tensor) -> torch.Tensor:
        """(groups, n) view of the block KLs."""
        if self.groups == 1:
            return kl.reshape(1, -1)
        if kl.dim() < 2 or kl.shape[1] != self.groups:
            raise ValueError(f"expected kl of shape (B, {self.groups}, ...), got {tuple(kl.shape)}")
        return kl.transpose(0, 1).reshape(self.groups, -1)

    def weights(self, kl: torch.Tensor) -> torch.Tensor:
        """Per-block weights lam * {lam_max, 1, lam_min}, same shape as ``kl``."""
        lo, hi = self.band
        g = self._grouped(kl)
        w = torch.where(g > hi, self.lam_max[:, None], torch.where(g < lo, self.lam_min[:, None], torch.ones_like(g)))
        w = w * self.lam[:, None]
        if self.groups == 1:
            return w.reshape(kl.shape)
        shape = (kl.shape[1], kl.shape[0]) + tuple(kl.shape[2:])
        return w.reshape(shape).transpose(0, 1)

    def forward(self, kl: torch.Tensor) -> torch.Tensor:
        return (kl * self.weights(kl).detach()).mean()

    @torch.no_grad()
    def update(self, kl: torch.Tensor) -> None:
        lo, hi = self.band
        r = self.rate
        g = self._grouped(kl.detach().float())
        if self.quantile < 1.0:
            if g.shape[1] > 1 << 16:  # torch.quantile's input limit; a strided subsample is enough
                g = g[:, :: g.shape[1] // (1 << 16) + 1]
            top = torch.quantile(g, self.quantile, dim=1)
            bottom = torch.quantile(g, 1.0 - self.quantile, dim=1)
        else:
            top, bottom = g.max(1).values, g.min(1).values
        up, down = torch.tensor(r), torch.tensor(1 / r)
        self.lam_max.mul_(torch.where(top > hi, up, down)).clamp_(1.0, self.lam_max_cap)
        self.lam_min.mul_(torch.where(bottom < lo, down, up)).clamp_(1e-3, 1.0)
        self.lam.mul_(torch.where(g.mean(1) > self.target, up, down)).clamp_(1e-6, 1e4)

    def stats(self, kl: torch.Tensor) -> dict:
        lo, hi = self.band
        kl = kl.detach().float()
        out = {
            "kl_mean": kl.mean().item(), "kl_min": kl.min().item(), "kl_max": kl.max().item(),
            "in_band": ((kl >= lo) & (kl <= hi)).float().mean().item(),
            "lam": self.lam.mean().item(), "lam_max": self.lam_max.mean().item(), "lam_min": self.lam_min.mean().item(),
        }
        if self.groups > 1:
            out["kl_group_mean"] = [round(v, 2) for v in self._grouped(kl).mean(1).tolist()]
        return out
