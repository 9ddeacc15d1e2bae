"""The codec API: images <-> .gqc bytes with a shipped GQ-VAE.

    >>> import gqcodec
    >>> data = gqcodec.compress("photo.png", quality=4)
    >>> img = gqcodec.decompress(data)            # PIL.Image
    >>> codec = gqcodec.load(device="cpu")         # keeps the model loaded
    >>> codec.compress(img, quality=2, mode="raw")

Large images are processed in tiles whose margins cover the transforms'
receptive field, so the result equals a whole-image pass (no seams) while
memory stays bounded by the tile size.

Spatially adaptive rate (range coding, on by default when the model has tuned
strengths): quality q allows up to n(q) blocks per latent position, and the
encoder keeps at each position the number of leading blocks that minimises
``squared error + lambda_q * bits`` (format v2's prefix layout). Flat regions
then stop paying for blocks that add nothing, or even hurt.
"""
from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import bitstream
from bitstream import HEADER_SIZE, FormatError, Header
from bitstream import countmap
from bitstream.metadata import decode_metadata

from . import zoo
from .card import MAX_EXT_BITS, CodecError, ModelCard, best_that_fits, check_installed, size_limit  # noqa: F401
from .card import reduce  # noqa: F401  (fast reductions need no network)
from .codebook import codebook_rows
from .imageio import open_image, prepare
from .model import STRIDE, GQVAE, pad_to_stride

TILE = 1024          # pixels per tile side (multiple of STRIDE)
ENC_MARGIN = 64      # pixels of context around an encoder tile (receptive field radius is 30)
DEC_MARGIN = 4       # latents of context around a decoder tile (receptive field radius < 2)
MODES = ("raw", "range")
RETRIES = 4         # refine: halvings of a swap set that raised a tile's cost


class _Prepared(NamedTuple):
    """An image already turned into the codec's array, colour and metadata (``imageio.prepare``)."""
    arr: np.ndarray
    color: str
    meta: dict


class _EncodeWork:
    """One image's encoder work that its encodes at several qualities share: the leading
    blocks' indices per search setting (codebook width, RDOQ strength, escape guess; block b's
    search depends on b alone) and the squared errors of decoding the first c blocks (the
    adaptive layout's costs, a function of the leading c blocks). A quality needing more blocks
    extends what is there, so the files are byte for byte those of separate encodes."""

    def __init__(self, rgb: np.ndarray, context: bool = True):
        self.rgb = rgb
        self.context = context  # block 0 with the prior's spatial context model (format v6/v7) where it has one
        self.indices: dict = {}
        self.se: dict = {}


class Codec(ModelCard):
    """A loaded model: the network with its quality ladder, index prior and header identity."""

    def __init__(self, name: str | None = None, device: str = "cpu", tile: int = TILE):
        super().__init__(name)
        self.device = torch.device(device)
        self.model: GQVAE = zoo.load_model(self.name, device=str(self.device))
        if tile % STRIDE or tile < STRIDE:
            raise ValueError(f"tile must be a positive multiple of {STRIDE}")
        self.tile = tile
        self._quantizers: dict = {}
        self._bias: dict = {}
        self._empty: dict = {}  # one latent size at a time (see empty_decode)
        self._lock = threading.Lock()

    def _require_encoder(self) -> None:
        if self.model.decoder_only:  # superseded_by may itself be superseded: name the default
            raise CodecError(f"model {self.name} is installed for decoding only (a superseded release kept so that "
                             f"its files decode); compress with {zoo.default_name()}")

    def quantizer(self, K_bits: int):
        """The GQ quantizer over the first 2**K_bits codewords (the model's own for its K_bits)."""
        cfg = self.model.config
        if K_bits == cfg.K_bits:
            return self.model.quantizer
        if K_bits not in self._quantizers:
            from .quantizer import GaussianQuantizer

            q0 = self.model.quantizer
            self._quantizers = {K_bits: GaussianQuantizer(q0.dim, 1 << K_bits, q0.seed, q0.beta,
                                                          q0.memory_budget).to(self.device)}
        return self._quantizers[K_bits]

    def count_costs(self, rgb: np.ndarray, indices: np.ndarray, K_bits: int | None = None,
                    known_se: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """What keeping c = 0..n leading blocks costs at each position: ``(se, bits)``, both (n + 1, h, w).

        ``se[c]``: squared error (8-bit units, summed over the position's 16x16 patch and the
        three channels) of the image decoded with c blocks everywhere, a function of
        ``indices[:c]`` alone; ``bits[c]``: the code length of the position's first c indices
        under the prior. Costs n + 1 decodes, less the leading rows of ``se`` given as
        ``known_se`` (from the same image and leading indices). Where ``indices`` has SKIP
        entries (escape statistics ignore them), the rows past a position's coded blocks mean nothing
        (``pick_counts``' limit masks them).
        """
        n, lh, lw = indices.shape
        H, W = rgb.shape[:2]
        K_bits = self.model.config.K_bits if K_bits is None else K_bits
        bits = bitstream.prefix_bits(self.prior, indices, K_bits)
        ref = rgb.astype(np.float32)
        err = np.zeros((lh * STRIDE, lw * STRIDE))  # patch-aligned; the padding beyond H x W stays 0
        se = np.empty((n + 1, lh, lw))
        k = 0
        if known_se is not None:
            k = min(n + 1, known_se.shape[0])
            se[:k] = known_se[:k]
        for c in range(k, n + 1):
            if c == 0:
                out = self.empty_decode(lh, lw)[:H, :W]
            else:
                out = self.decode_array(indices[:c], H, W, K_bits)
            err[:H, :W] = ((out.astype(np.float32) - ref) ** 2).sum(axis=2)
            se[c] = err.reshape(lh, STRIDE, lw, STRIDE).sum(axis=(1, 3))
        return se, bits

    def empty_decode(self, lh: int, lw: int) -> np.ndarray:
        """The decode of a latent with no coded block (the prior mean everywhere), cached per latent size."""
        key = (lh, lw)
        if key not in self._empty:
            self._empty = {key: self.decode_array(np.full((1, lh, lw), bitstream.SKIP, dtype=np.int64),
                                                  lh * STRIDE, lw * STRIDE)}
        return self._empty[key]

    @staticmethod
    def pick_counts(se: np.ndarray, bits: np.ndarray, lam: float, limit: np.ndarray | None = None) -> np.ndarray:
        """Per-position count (h, w) minimising ``se + lam * bits``, the count map's own cost
        included (a second pass, once the first pass's map shows what the v5 map coder's contexts
        will learn: ``bitstream.countmap.estimated_costs``); at most ``limit`` (h, w) where given."""
        J = se + lam * bits
        if limit is not None:
            J[np.arange(J.shape[0])[:, None, None] > limit[None]] = np.inf
        map_bits = countmap.estimated_costs(J.argmin(axis=0), se.shape[0] - 1)
        return (J + lam * map_bits).argmin(axis=0)

    def choose_counts(self, rgb: np.ndarray, indices: np.ndarray, lam: float, K_bits: int | None = None) -> np.ndarray:
        """The adaptive layout's block counts (h, w) for ``indices`` (n, h, w) of image ``rgb``."""
        return self.pick_counts(*self.count_costs(rgb, indices, K_bits), lam)

    def rdoq_bias(self, gamma: float, K_bits: int | None = None, escape_share: float = 0.5) -> torch.Tensor | None:
        """(blocks, K) search bias ``gamma * ln P_b(index)`` under the index prior, or None for gamma 0.

        For a codebook wider than the prior (v3 escape coding) the probabilities are those of
        escape coding with every block's share of indices below the prior's K set to
        ``escape_share`` (the encoder's guess; the file's escape table then uses the real shares).
        """
        if not gamma:
            return None
        if self.prior is None:
            raise CodecError(f"model {self.name} has no index prior, so rate-optimised quantization is unavailable")
        cfg = self.model.config
        K_bits = cfg.K_bits if K_bits is None else K_bits
        key = (gamma, K_bits, escape_share)
        if key not in self._bias:
            if K_bits == cfg.K_bits:
                # each block's representative table (a count-conditioned prior's tables for counts come later)
                rows = self.prior.freqs if self.prior.T == 1 else self.prior.freqs[:cfg.blocks]
                f = torch.from_numpy(np.asarray(rows, dtype=np.float64))
                lp = torch.log(f / f.sum(dim=1, keepdim=True))
                if lp.shape[0] == 1:
                    lp = lp.expand(cfg.blocks, -1)
            else:
                z = np.full(cfg.blocks, min(65535, max(1, round(escape_share * 65536))))
                bits = bitstream.wide_code_lengths(self.prior, K_bits, z, cfg.blocks)
                lp = torch.from_numpy(np.stack(bits)).mul_(-np.log(2.0))
            self._bias = {key: (gamma * lp).to(self.device)}  # one at a time: (blocks, K) float64 is 10 MB per 2**16
        return self._bias[key]

    # -- transforms in tiles -------------------------------------------------
    def encode_array(self, rgb: np.ndarray, n_blocks: int, rdoq: float = 0.0, K_bits: int | None = None,
                     escape_share: float = 0.5, first: int = 0) -> np.ndarray:
        """HxWx3 uint8 -> indices (n_blocks - first, ceil(H/16), ceil(W/16)) int64 of blocks
        ``first`` .. ``n_blocks - 1`` (default: the leading n_blocks).

        Each block is searched on its own, so block b's indices do not depend on how many
        blocks are encoded (qualities can share them, see ``_EncodeWork``).
        ``rdoq`` > 0 biases each block's search by ``rdoq * ln P(index)`` under the
        model's index prior (rate-distortion optimised quantization, encoder only).
        ``K_bits`` (default: the model's) searches the first 2**K_bits codewords.
        """
        return self.search(rgb, n_blocks, rdoq, K_bits, escape_share, first)[0]

    def rdoq_context(self, rdoq: float, K_bits: int | None = None):
        """The index prior's block-0 spatial context model when RDOQ prices block 0 with it (strength
        > 0, the model's own codebook width, a prior with a context model and a tuned
        ``context_rdoq_scale`` > 0), else None."""
        K_bits = self.model.config.K_bits if K_bits is None else K_bits
        if not (rdoq and self.context_rdoq_scale > 0) or self.prior is None or K_bits != self.model.config.K_bits:
            return None
        return self.prior.context

    def _context_search(self, quant, ctx, mu: torch.Tensor, logvar: torch.Tensor, gamma: float) -> np.ndarray:
        """Block 0's indices (h, w) chosen with RDOQ under its spatial context model: positions in the
        model's wavefront order, each searched for ``GQ score + gamma * ln p(index | neighbours)`` given
        the neighbours already chosen (all coded; the count map is chosen later). The context's log
        probability is ``ln 2 · 2**-16 · (base_i + Q_i · t)`` up to a constant, with ``Q_i = rint(32 c_i)``;
        the base rides as the search bias and ``Q_i · t ≈ 32 c_i · t`` as a shift of the query's linear
        part (``mu / sigma^2``), so each wavefront is one ordinary search. Encoder only: any choice decodes."""
        from bitstream.context import QSCALE, T_SHIFT, wavefronts

        h, w = mu.shape[:2]
        scale = gamma * np.log(2.0) * 2.0 ** -T_SHIFT
        bias = torch.from_numpy(ctx.base.astype(np.float64) * scale).to(mu.device)
        idx0 = np.full((h, w), -1, dtype=np.int64)
        var = logvar.float().exp()
        with quant.reusing(bias):
            for ys, xs in wavefronts(np.ones((h, w), dtype=bool)):
                shift = torch.from_numpy(ctx.tilt(ctx.features(idx0, ys, xs)) * (scale * QSCALE)).to(mu)
                yt, xt = torch.from_numpy(ys), torch.from_numpy(xs)
                m_, v_ = mu[yt, xt], var[yt, xt]
                idx0[ys, xs] = quant.quantize(m_ + shift * v_, logvar[yt, xt], bias=bias).cpu().numpy()
        return idx0

    @torch.inference_mode()
    def search(self, rgb: np.ndarray, n_blocks: int, rdoq: float = 0.0, K_bits: int | None = None,
               escape_share: float = 0.5, first: int = 0, top: int = 0, context: bool = False):
        """``encode_array``'s search, returning ``(indices, candidates, curvature)``.

        With ``context`` (and RDOQ, the model's codebook width and a prior with a block-0 context
        model: ``rdoq_context``) block 0 is searched under that context model (``_context_search``),
        for the v6 files it codes.

        With ``top`` > 0 it also keeps what ``refine`` needs: each block's ``top`` best
        codewords by the same score, ``candidates`` (n, top, h, w) int32, and the posterior
        precision beyond the prior's, ``curvature`` = max(0, 1/sigma^2 - 1), (n, h, w, m)
        float32, the GQ score's own model of how sharply the decoder's output depends on each
        latent dimension. Both are None for ``top`` = 0.
        """
        m = self.model
        K_bits = m.config.K_bits if K_bits is None else int(K_bits)
        quant = self.quantizer(K_bits)
        bias = self.rdoq_bias(rdoq, K_bits, escape_share)
        x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float().div_(255)
        x = pad_to_stride(x)
        H, W = x.shape[-2:]
        if not 0 <= first < n_blocks:
            raise ValueError(f"first must be in [0, {n_blocks}), got {first}")
        nb, cm = n_blocks - first, m.config.m
        out = np.empty((nb, H // STRIDE, W // STRIDE), dtype=np.int64)
        cand = np.empty((nb, top, H // STRIDE, W // STRIDE), dtype=np.int32) if top else None
        ctx = self.rdoq_context(rdoq, K_bits) if context and first == 0 else None
        skip = 0 if ctx is None else 1  # block 0 is searched after the tiles, from its kept posterior
        if skip:
            mu0 = torch.empty(H // STRIDE, W // STRIDE, cm, device=self.device)
            lv0 = torch.empty_like(mu0)
        curv = np.empty((nb, H // STRIDE, W // STRIDE, cm), dtype=np.float32) if top else None
        t, mg = self.tile, ENC_MARGIN
        for y0 in range(0, H, t):
            for x0 in range(0, W, t):
                y1, x1 = min(H, y0 + t), min(W, x0 + t)
                ya, xa = max(0, y0 - mg), max(0, x0 - mg)
                yb, xb = min(H, y1 + mg), min(W, x1 + mg)
                mu, logvar = m.posterior(x[..., ya:yb, xa:xb].to(self.device))
                oy, ox = (y0 - ya) // STRIDE, (x0 - xa) // STRIDE
                th, tw = (y1 - y0) // STRIDE, (x1 - x0) // STRIDE
                mu = mu[..., oy:oy + th, ox:ox + tw]
                logvar = logvar[..., oy:oy + th, ox:ox + tw]
                # rows are block-major: one search per block (with that block's prior under RDOQ)
                rows_mu = m.to_rows(mu[:, first * cm:], nb).view(nb, th * tw, -1)
                rows_lv = m.to_rows(logvar[:, first * cm:], nb).view(nb, th * tw, -1)
                ys, xs = slice(y0 // STRIDE, y1 // STRIDE), slice(x0 // STRIDE, x1 // STRIDE)
                if skip:
                    mu0[ys, xs] = rows_mu[0].view(th, tw, cm)
                    lv0[ys, xs] = rows_lv[0].view(th, tw, cm)
                if nb > skip:
                    idx = torch.stack([quant.quantize(rows_mu[b], rows_lv[b],
                                                      bias=None if bias is None else bias[first + b])
                                       for b in range(skip, nb)]).view(nb - skip, th, tw)
                    out[skip:, ys, xs] = idx.cpu().numpy()
                if top:
                    for b in range(nb):
                        cand[b, :, ys, xs] = self._top_codewords(
                            quant, rows_mu[b], rows_lv[b], None if bias is None else bias[first + b], top
                        ).T.reshape(top, th, tw).cpu().numpy()
                    curv[:, ys, xs] = rows_lv.neg().exp_().sub_(1).clamp_(min=0).view(nb, th, tw, cm).cpu().numpy()
        if skip:
            out[0] = self._context_search(quant, ctx, mu0, lv0, rdoq * self.context_rdoq_scale)
        return out, cand, curv

    @staticmethod
    def _top_codewords(quant, mu: torch.Tensor, logvar: torch.Tensor, bias, top: int) -> torch.Tensor:
        """(rows, top) indices of the ``top`` highest-scoring codewords (float32 score; row chunks
        bounded by the quantizer's memory budget)."""
        q = quant.queries(mu, logvar).float()
        keys = quant.keys.float()
        b = None if bias is None else bias.float()
        step = quant.chunk_rows()
        parts = []
        for i in range(0, q.shape[0], step):
            sc = q[i:i + step] @ keys.T
            if b is not None:
                sc += b
            parts.append(sc.topk(top, dim=1).indices)
        return torch.cat(parts).to(torch.int32)

    def refine(self, rgb: np.ndarray, indices: np.ndarray, candidates: np.ndarray, curvature: np.ndarray,
               lam: float, iters: int, alpha: float) -> np.ndarray:
        """Decoder-checked index refinement (encoder only; the file format and decoder are unchanged).

        The GQ search picks each block's codeword from the posterior alone. This pass lowers
        the real cost ``squared error + lam * bits`` of the decoded image: per iteration and
        decoder tile, the gradient of the squared error with respect to the latent predicts,
        with the second-order term ``alpha * sum(curvature * delta^2)``, what swapping each
        coded block for one of its ``candidates`` would change; every position whose best
        predicted swap (one block per position) lowers the cost is swapped, the swaps are
        decoded, each is kept only if the squared error of its 5x5-position neighbourhood plus
        its rate change went down, and the kept set is decoded again and accepted only if the
        tile's cost fell (else the better half by local gain is tried, up to ``RETRIES`` times).
        Stops early once nothing improves. Skipped blocks stay skipped. ``curvature`` and
        ``candidates`` come from ``search(..., top=k)``; ``docs/design.md`` has the measurements.
        """
        m = self.model
        n, lh, lw = indices.shape
        H, W = rgb.shape[:2]
        cur = indices.copy()
        K = self.prior.K
        bits_tab = torch.from_numpy(self.prior.code_lengths(np.broadcast_to(np.arange(K), (n, 1, K)))[:, 0]).float()
        cb = self.model.quantizer.codebook.cpu()
        ref = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)
        t, mg = self.tile // STRIDE, DEC_MARGIN
        box = torch.ones(1, 1, 5, 5)
        for y0 in range(0, lh, t):
            for x0 in range(0, lw, t):
                y1, x1 = min(lh, y0 + t), min(lw, x0 + t)
                ya, xa = max(0, y0 - mg), max(0, x0 - mg)
                yb, xb = min(lh, y1 + mg), min(lw, x1 + mg)
                hc, wc = yb - ya, xb - xa
                # the context's pixels, zero-padded past the image; padding is masked out of the error
                tgt = torch.zeros(3, hc * STRIDE, wc * STRIDE)
                valid = torch.zeros(1, hc * STRIDE, wc * STRIDE)
                py, px = min(H, yb * STRIDE) - ya * STRIDE, min(W, xb * STRIDE) - xa * STRIDE
                tgt[:, :py, :px] = ref[:, ya * STRIDE:ya * STRIDE + py, xa * STRIDE:xa * STRIDE + px]
                valid[:, :py, :px] = 1
                tgt, valid = tgt.to(self.device), valid.to(self.device)
                iy, ix = slice(y0 - ya, y1 - ya), slice(x0 - xa, x1 - xa)
                cand = torch.from_numpy(candidates[:, :, y0:y1, x0:x1].astype(np.int64))  # (n, k, th, tw)
                cv = torch.from_numpy(curvature[:, y0:y1, x0:x1])[:, None]  # (n, 1, th, tw, m)
                dR_cand = torch.stack([bits_tab[b][cand[b]] for b in range(n)])

                def decode(ctx: np.ndarray, grad: bool = False):
                    with torch.inference_mode(False), torch.set_grad_enabled(grad):
                        z = m.latent_from_indices(torch.from_numpy(ctx)[None].to(self.device))
                        if grad:
                            z.requires_grad_(True)
                        y = m.g_s(z)[0].clamp(0, 1).mul(255)
                        return z, ((y - tgt) ** 2 * valid).sum(0)

                def per_pos(err: torch.Tensor) -> torch.Tensor:
                    return err.detach().cpu().view(hc, STRIDE, wc, STRIDE).sum((1, 3))

                def rate(ctx: np.ndarray) -> float:
                    c = torch.from_numpy(ctx[:, iy, ix])
                    return float(sum(bits_tab[b][c[b][c[b] >= 0]].sum() for b in range(n)))

                for _ in range(iters):
                    ctx = cur[:, ya:yb, xa:xb].copy()
                    z, err = decode(ctx, grad=True)
                    with torch.inference_mode(False):
                        g, = torch.autograd.grad(err.sum(), z)
                    before = per_pos(err)
                    cost0 = float(before.sum()) + lam * rate(ctx)
                    g = g.cpu()[0, :n * m.config.m, iy, ix].reshape(n, m.config.m, y1 - y0, x1 - x0).permute(0, 2, 3, 1)
                    ci = torch.from_numpy(ctx[:, iy, ix])
                    coded = ci >= 0
                    c0 = ci.clamp(min=0)
                    d = cb[cand] - cb[c0][:, None]  # (n, k, th, tw, m)
                    dJ = (g[:, None] * d).sum(-1) + alpha * (cv * d * d).sum(-1) \
                        + lam * (dR_cand - torch.stack([bits_tab[b][c0[b]] for b in range(n)])[:, None])
                    dJ = torch.where(coded[:, None], dJ, torch.full_like(dJ, np.inf))
                    gain, kbest = dJ.min(1)           # (n, th, tw) best candidate per block
                    gain, bbest = gain.min(0)         # (th, tw) best block per position
                    propose = gain < 0
                    if not bool(propose.any()):
                        break
                    new_idx = torch.gather(cand, 1, kbest[:, None])[:, 0]  # (n, th, tw)
                    new_idx = torch.gather(new_idx, 0, bbest[None])[0]      # (th, tw)
                    old_idx = torch.gather(c0, 0, bbest[None])[0]
                    dbits = torch.where(propose, bits_tab[bbest, new_idx] - bits_tab[bbest, old_idx], torch.zeros(()))

                    def apply(mask: torch.Tensor) -> np.ndarray:
                        out = ctx.copy()
                        yy, xx = np.nonzero(mask.numpy())
                        bb = bbest.numpy()[yy, xx]
                        out[bb, yy + (y0 - ya), xx + (x0 - xa)] = new_idx.numpy()[yy, xx]
                        return out

                    trial = apply(propose)
                    after = per_pos(decode(trial)[1])
                    dse = F.conv2d((after - before)[None, None], box, padding=2)[0, 0][iy, ix]
                    local = torch.where(propose, dse + lam * dbits, torch.full_like(dse, np.inf))
                    # swaps interact through the decoder, so the set is checked as a whole: when it
                    # does not lower the tile's cost, the better half (by local gain) is tried
                    limit, improved = 0.0, False
                    for _ in range(RETRIES):
                        keep = local < limit
                        if not bool(keep.any()):
                            break
                        trial = apply(keep)
                        if float(per_pos(decode(trial)[1]).sum()) + lam * rate(trial) < cost0:
                            cur[:, y0:y1, x0:x1] = trial[:, iy, ix]
                            improved = True
                            break
                        limit = float(local[keep].median())
                    if not improved:
                        break
        return cur

    @torch.inference_mode()
    def decode_array(self, indices: np.ndarray, height: int, width: int, K_bits: int | None = None) -> np.ndarray:
        """indices (n, h, w) -> HxWx3 uint8 (cropped to height x width).

        Indices of a codebook wider than the model's (``K_bits``) are looked up in the rows
        they use, generated on demand."""
        m = self.model
        n, lh, lw = indices.shape
        idx = torch.from_numpy(indices.astype(np.int64))
        lookup = None
        if K_bits is not None and K_bits > m.config.K_bits:
            used = np.unique(indices[indices >= 0])
            if used.size == 0:
                used = np.zeros(1, dtype=np.int64)
            rows = torch.from_numpy(codebook_rows(m.config.seed, used, m.config.m)).to(self.device)
            used_t = torch.from_numpy(used).to(self.device)
            lookup = lambda t: rows[torch.searchsorted(used_t, t)]  # noqa: E731
        out = np.empty((lh * STRIDE, lw * STRIDE, 3), dtype=np.uint8)
        t, mg = self.tile // STRIDE, DEC_MARGIN
        for y0 in range(0, lh, t):
            for x0 in range(0, lw, t):
                y1, x1 = min(lh, y0 + t), min(lw, x0 + t)
                ya, xa = max(0, y0 - mg), max(0, x0 - mg)
                yb, xb = min(lh, y1 + mg), min(lw, x1 + mg)
                z = m.latent_from_indices(idx[None, :, ya:yb, xa:xb].to(self.device), lookup)
                y = m.g_s(z)[0]
                oy, ox = (y0 - ya) * STRIDE, (x0 - xa) * STRIDE
                y = y[:, oy:oy + (y1 - y0) * STRIDE, ox:ox + (x1 - x0) * STRIDE]
                out[y0 * STRIDE:y1 * STRIDE, x0 * STRIDE:x1 * STRIDE] = \
                    y.clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return out[:height, :width]

    # -- bytes -----------------------------------------------------------------
    def compress(self, image, quality: int | None = None, mode: str = "range", rdoq: float | None = None,
                 adaptive: bool | None = None, max_bytes: int | None = None,
                 max_bpp: float | None = None, keep_metadata: bool = True, refine: int | None = None,
                 context: bool = True) -> bytes:
        """Encode a path, PIL image or uint8 array to .gqc bytes.

        ``keep_metadata``: store the image's EXIF and XMP (format v4 or later; EXIF orientation is applied
        to the pixels and dropped from the EXIF). False strips them (GPS position, camera serial...).

        ``max_bytes`` / ``max_bpp`` (instead of ``quality``): the best quality whose file fits
        (``compress_to_size``).

        ``rdoq``: strength of rate-distortion optimised quantization (range mode only;
        None: the model's tuned strength for this quality, 0: plain GQ search). Decoding is
        unaffected.
        ``adaptive``: spatially adaptive rate, each position keeps only the leading blocks
        that pay for their bits (range mode only; None: on when the model has a tuned
        strength for this quality; the file is then format v2).
        ``refine``: iterations of decoder-checked index refinement (``refine``; None: the
        model's setting, 0: off). Encoder only; it applies to range-coded qualities that search
        the model's own codebook and have an adaptive-rate multiplier.
        ``context``: code block 0 with the prior's spatial context model where it has one and
        where that makes the file smaller (format v6, or v7 for the wide codebooks of the top
        qualities: a few % smaller files, ~1 ms more per 16x16 position to encode and to decode);
        False writes the same indices as v5/v3/v1, which decode several times faster.
        """
        self._require_encoder()
        if max_bytes is not None or max_bpp is not None:
            if quality is not None:
                raise CodecError("give a quality or a size limit (max_bytes / max_bpp), not both")
            return self.compress_to_size(image, max_bytes, max_bpp, mode=mode, rdoq=rdoq, adaptive=adaptive,
                                         keep_metadata=keep_metadata, refine=refine, context=context)
        src = self._prepare(image)
        return self._encode(src, quality, mode, rdoq, adaptive, keep_metadata, _EncodeWork(self._rgb(src), context),
                            refine)

    def compress_many(self, image, qualities=None, mode: str = "range", rdoq: float | None = None,
                      adaptive: bool | None = None, keep_metadata: bool = True,
                      refine: int | None = None, context: bool = True) -> dict[int, bytes]:
        """``{quality: .gqc bytes}`` of one image at several qualities (default: the whole ladder),
        each file byte for byte what ``compress`` makes at that quality. Qualities that search
        the same codebook with the same RDOQ strength share their work (the leading blocks'
        searches and the adaptive layout's decodes), so the ladder's narrow qualities together
        cost about what the largest of them costs alone."""
        self._require_encoder()
        qs = self.qualities if qualities is None else [int(q) for q in qualities]
        src = self._prepare(image)
        work = _EncodeWork(self._rgb(src), context)
        return {q: self._encode(src, q, mode, rdoq, adaptive, keep_metadata, work, refine) for q in qs}

    @staticmethod
    def _prepare(image) -> _Prepared:
        src = image if isinstance(image, _Prepared) else _Prepared(*prepare(open_image(image)))
        h, w = src.arr.shape[:2]
        if h < 1 or w < 1:
            raise CodecError("image is empty")
        return src

    @staticmethod
    def _rgb(src: _Prepared) -> np.ndarray:
        return np.repeat(src.arr[:, :, None], 3, axis=2) if src.color == "L" else src.arr

    def _block_indices(self, work: _EncodeWork, n: int, rdoq: float, K_bits: int, escape: float, top: int = 0):
        """The leading n blocks' ``(indices, candidates, curvature)`` (see ``search``) of ``work``'s
        image under a search setting; the indices are a copy."""
        key = (K_bits, rdoq, escape, top)
        have = work.indices.get(key)
        done = 0 if have is None else have[0].shape[0]
        if done < n:
            more = self.search(work.rgb, n, rdoq, K_bits, escape, first=done, top=top, context=work.context)
            have = more if have is None else tuple(None if a is None else np.concatenate([a, b])
                                                   for a, b in zip(have, more))
            work.indices[key] = have
        idx, cand, curv = have
        return idx[:n].copy(), None if cand is None else cand[:n], None if curv is None else curv[:n]

    def refine_settings(self, quality: int | None) -> tuple[int, int, float]:
        """The model's refinement ``(iterations, candidates, alpha)`` for a quality (0 iterations: off).
        Registry ``refine``: {"iters", "top", "alpha"}, optionally per quality under "by_quality";
        a model without one gets 0 iterations, 8 candidates and alpha 1000."""
        r = self.entry.get("refine") or {}
        q = self.default_quality if quality is None else int(quality)
        r = {**r, **r.get("by_quality", {}).get(str(q), {})}
        return int(r.get("iters", 0)), int(r.get("top", 8)), float(r.get("alpha", 1000.0))

    def refine_plan(self, quality: int | None, mode: str = "range", refine: int | None = None) -> tuple[int, int, float]:
        """The refinement an encode at ``quality`` runs: ``refine_settings``, with ``refine``
        iterations when given, and 0 iterations where refinement does not apply: it weighs bits
        against squared error with the quality's adaptive-rate multiplier under the index prior
        and swaps codewords within the model's own codebook, so raw files, models without a
        prior, untuned qualities and the wide top of the ladder are not refined."""
        iters, top, alpha = self.refine_settings(quality)
        if refine is not None:
            if int(refine) != refine or refine < 0:
                raise CodecError(f"refine must be a whole number of iterations >= 0, got {refine}")
            iters = int(refine)
        if not (mode == "range" and self.prior is not None and self.adaptive_lambda(quality) is not None
                and self.index_bits(quality) == self.model.config.K_bits):
            iters = 0
        return iters, top, alpha

    def _encode(self, src: _Prepared, quality: int | None, mode: str, rdoq: float | None,
                adaptive: bool | None, keep_metadata: bool, work: _EncodeWork, refine: int | None = None) -> bytes:
        if mode not in MODES:
            raise CodecError(f"mode must be one of {MODES}, got {mode!r}")
        n = self.n_blocks(quality)
        q = self.default_quality if quality is None else int(quality)
        if rdoq is None:
            rdoq = self.rdoq_for(q) if mode == "range" else 0.0
        rdoq = float(rdoq)
        if not (rdoq >= 0 and np.isfinite(rdoq)):
            raise CodecError(f"rdoq must be a finite number >= 0, got {rdoq}")
        if rdoq and mode != "range":
            raise CodecError("rdoq only applies to range coding (raw indices all cost log2 K bits)")
        lam = self.adaptive_lambda(q)
        if adaptive and mode != "range":
            raise CodecError("adaptive rate needs range coding (raw files code every block)")
        if adaptive and lam is None:
            raise CodecError(f"model {self.name} has no tuned adaptive-rate strength for quality {q}")
        if adaptive is None:
            adaptive = mode == "range" and lam is not None and self.prior is not None
        h, w = src.arr.shape[:2]
        cfg = self.model.config
        kb = self.index_bits(q)
        if kb != cfg.K_bits and mode == "range" and self.prior is None:
            raise CodecError(f"quality {q} needs the model's index prior (wide indices), model {self.name} has none")
        escape = self.escape_guess.get(q, 0.5) if kb != cfg.K_bits else 0.5
        iters, top, alpha = self.refine_plan(q, mode, refine)
        top = top if iters else 0
        with self._lock:
            indices, cand, curv = self._block_indices(work, n, rdoq, kb, escape, top)
            if adaptive:
                key = (kb, rdoq, escape)
                se, bits = self.count_costs(work.rgb, indices, kb, known_se=work.se.get(key))
                if key not in work.se or work.se[key].shape[0] < se.shape[0]:
                    work.se[key] = se
                counts = self.pick_counts(se, bits, lam)
                indices[np.arange(n)[:, None, None] >= counts[None]] = bitstream.SKIP
            if iters:
                indices = self.refine(work.rgb, indices, cand, curv, lam, iters, alpha)
        header = Header(model_id=self.name, model_hash=self.hash, codebook_seed=cfg.seed, K_bits=kb,
                        m=cfg.m, stride=STRIDE, n_blocks=n, latent_h=indices.shape[1], latent_w=indices.shape[2],
                        width=w, height=h, color=src.color, coding=mode, prior="uniform", quality=q)
        prior = self.prior if mode == "range" else None
        meta = src.meta if keep_metadata else None
        data = bitstream.pack(header, indices, prior=prior, metadata=meta, spatial=work.context)
        if work.context and prior is not None and prior.context is not None:
            # the context model pays on most images, not on all (busy ones at the wide top): keep the
            # histogram's file (v5/v3/v1, which also decodes faster) when it is no larger
            plain = bitstream.pack(header, indices, prior=prior, metadata=meta, spatial=False)
            if len(plain) <= len(data):
                data = plain
        return data

    def compress_to_size(self, image, max_bytes: int | None = None, max_bpp: float | None = None,
                         mode: str = "range", rdoq: float | None = None, adaptive: bool | None = None,
                         keep_metadata: bool = True, refine: int | None = None, context: bool = True) -> bytes:
        """The highest-quality file of ``image`` that is at most ``max_bytes`` long, or at most
        ``max_bpp`` bits per pixel (the whole file, header included); give one of the two.

        File size grows with quality, so the qualities are bisected: about log2(#qualities) + 1
        encodes, which share their work as in ``compress_many`` (qualities searching the same
        codebook cost together about what the largest of them costs alone). Only a file that
        was encoded and measured to fit is returned; CodecError when even the lowest quality
        does not fit.
        """
        self._require_encoder()
        if (max_bytes is None) == (max_bpp is None):
            raise CodecError("give exactly one of max_bytes and max_bpp")
        src = self._prepare(image)
        h, w = src.arr.shape[:2]
        limit, what = size_limit(max_bytes, max_bpp, w, h)
        qs = self.qualities
        work = _EncodeWork(self._rgb(src), context)
        best, smallest = best_that_fits(
            qs, lambda q: self._encode(src, q, mode, rdoq, adaptive, keep_metadata, work, refine), limit)
        if best is None:
            raise CodecError(f"the image does not fit in {what}: quality {qs[0]}, the lowest, "
                             f"needs {smallest} bytes")
        return best

    def _recounted(self, data: bytes, header: Header, q: int, n: int, lam: float, work: dict) -> bytes:
        """The file reduced to quality ``q`` (``n`` blocks) with each position's count chosen again,
        against the decoded file; ``work`` carries the file's indices, its decode and the count
        costs' decodes between calls on the same file."""
        if "indices" not in work:
            work["indices"] = bitstream.unpack(data, prior=self.prior)[1]
        indices = work["indices"]
        with self._lock:
            if "ref" not in work:
                work["ref"] = self.decode_array(indices, header.height, header.width, header.K_bits)
            # rows past a position's SKIPs are masked by the limit; se rows depend on the leading blocks only
            se, bits = self.count_costs(work["ref"], indices[:n], header.K_bits, known_se=work.get("se"))
            if work.get("se") is None or work["se"].shape[0] < se.shape[0]:
                work["se"] = se
        have = np.minimum((indices >= 0).sum(axis=0), n)  # coded blocks are a prefix at every position
        counts = self.pick_counts(se, bits, lam, limit=have)
        return bitstream.truncate(data, n, prior=self.prior, quality=q, counts=counts)

    def decompress(self, data: bytes) -> Image.Image:
        """Decode .gqc bytes to a PIL image; a file's EXIF and XMP (v4 or later) are in ``image.info["exif"]`` /
        ``image.info["xmp"]`` (pass them to ``save``: ``save_metadata_kwargs``)."""
        header = bitstream.read_header(data)
        self.check_header(header)
        header, indices = bitstream.unpack(data, prior=self.prior)
        with self._lock:
            rgb = self.decode_array(indices, header.height, header.width, header.K_bits)
        if header.color == "L":
            gray = np.round(rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
            img = Image.fromarray(gray, "L")
        else:
            img = Image.fromarray(rgb, "RGB")
        # unpack has checked the whole file, metadata block included: only its chunks are left to read
        img.info.update(decode_metadata(bytes(memoryview(data)[HEADER_SIZE + header.payload_length:])))
        return img


_codecs: dict = {}


def load(name: str | None = None, quality: int | None = None, device: str = "cpu") -> Codec:
    """A codec object for a shipped model (the default one when ``name`` is None).

    ``quality`` (optional) is validated and becomes the codec's default quality.
    """
    key = (name or zoo.default_name(), str(device))
    if key not in _codecs:
        _codecs[key] = Codec(key[0], device=device)
    codec = _codecs[key]
    if quality is not None:
        codec.n_blocks(quality)
        c = Codec.__new__(Codec)
        c.__dict__.update(codec.__dict__)
        c.default_quality = int(quality)
        return c
    return codec


def compress(image, quality: int | None = None, mode: str = "range", model: str | None = None,
             rdoq: float | None = None, adaptive: bool | None = None, max_bytes: int | None = None,
             max_bpp: float | None = None, keep_metadata: bool = True, refine: int | None = None,
             context: bool = True) -> bytes:
    """Encode ``image`` (path, PIL image, HxWx3/HxW uint8 array) to .gqc bytes; ``max_bytes`` or
    ``max_bpp`` instead of ``quality``: the best quality whose file fits; ``keep_metadata=False``
    drops the image's EXIF and XMP; ``context=False`` writes files that decode faster (no block-0
    context model, format v5/v1; ``Codec.compress``)."""
    return load(model).compress(image, quality=quality, mode=mode, rdoq=rdoq, adaptive=adaptive,
                                max_bytes=max_bytes, max_bpp=max_bpp, keep_metadata=keep_metadata, refine=refine,
                                context=context)


def info(data: bytes) -> Header:
    """The parsed header of .gqc bytes (no model or torch work needed)."""
    return bitstream.read_header(data)


def load_for(header: Header, device: str = "cpu", what: str = "file") -> Codec:
    """The codec of the model named in a .gqc ``header``; CodecError (naming ``what``, the file)
    when that model is not installed."""
    return load(check_installed(header, what), device=device)


def decompress(data: bytes) -> Image.Image:
    """Decode .gqc bytes with the model named in their header."""
    return load_for(bitstream.read_header(data)).decompress(data)


__all__ = ["Codec", "CodecError", "FormatError", "compress", "decompress", "info", "load", "reduce"]
