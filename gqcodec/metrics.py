"""Image quality metrics on 8-bit images, as used for the rate-distortion results.

Both metrics take two images of the same shape: ``uint8`` arrays ``HxWx3`` (RGB) or
``HxW`` (grayscale), or PIL images (converted with ``np.asarray``).

* :func:`psnr_rgb`: 8-bit PSNR with peak 255, the MSE taken over all pixels and all
  channels at once (CompressAI's ``psnr-rgb``). Identical images give ``math.inf``;
  callers that average PSNRs must decide what to do with it (the evaluation harness
  caps each value at :data:`PSNR_CAP` before averaging, see ``gqcodec.evaluate``).
* :func:`ms_ssim_rgb`: MS-SSIM of pytorch-msssim on ``[0, 1]`` floats (``data_range=1``),
  all channels (CompressAI's ``ms-ssim-rgb``), float32 on the CPU.

MS-SSIM on small images: the standard 5 scales with an 11-tap window need a short side
of at least 161 px (pytorch-msssim asserts ``> 160``). For smaller images the number of
scales is reduced to the largest ``k`` with ``short side > 10 * 2**(k-1)`` (161 -> 5,
81..160 -> 4, 41..80 -> 3, 21..40 -> 2, 11..20 -> 1), using the first ``k`` standard
weights renormalised to sum to 1. With ``k == 1`` this is plain SSIM. Images whose short
side is under 11 px give ``nan``. Such values are not comparable with the 5-scale numbers
of published results; they exist so that small test images can be evaluated at all.

Both functions are deterministic: PSNR is computed in float64; MS-SSIM runs float32 on the
CPU and repeated calls with the same torch thread count give bit-identical results (the
evaluation harness runs with 1 thread by default).
"""
from __future__ import annotations

import math

import numpy as np

PEAK = 255.0
PSNR_CAP = 100.0
"""Value the harness substitutes for an infinite PSNR (identical images) before averaging."""

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 11


def _as_uint8(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 image, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"{name} must be HxW or HxWx3, got shape {arr.shape}")
    return arr


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = _as_uint8(a, "a")
    b = _as_uint8(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("images are empty")
    return a, b


def mse_rgb(a, b) -> float:
    """Mean squared error over all pixels and channels, in 8-bit units."""
    a, b = _pair(a, b)
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(d * d))


def psnr_from_mse(mse: float) -> float:
    """``10*log10(255**2 / mse)``; ``inf`` for ``mse == 0``."""
    if mse <= 0:
        return math.inf
    return 10.0 * math.log10(PEAK * PEAK / mse)


def psnr_rgb(a, b) -> float:
    """8-bit PSNR (dB, peak 255) over all channels; ``math.inf`` for identical images."""
    return psnr_from_mse(mse_rgb(a, b))


def ms_ssim_scales(height: int, width: int) -> int:
    """Number of MS-SSIM scales used for an image of this size (0: too small, result NaN)."""
    side = min(height, width)
    k = 0
    while k < len(MS_SSIM_WEIGHTS) and side > (WIN_SIZE - 1) * 2 ** k:
        k += 1
    return k


def _to_tensor(arr: np.ndarray):
    import torch

    t = torch.from_numpy(arr.astype(np.float32)) / 255.0  # astype copies: writable, contiguous
    if t.ndim == 2:
        t = t[None]
    else:
        t = t.permute(2, 0, 1)
    return t[None]  # 1xCxHxW


def _ms_ssim_weighted(x, y, weights) -> float:
    """MS-SSIM with ``len(weights)`` scales, following pytorch-msssim's algorithm step by step
    (without its 161 px size check; the caller ensures every scale is >= 11 px)."""
    import torch
    import torch.nn.functional as F
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    weights = torch.tensor(weights, dtype=torch.float32)
    k = len(weights)
    win = _fspecial_gauss_1d(WIN_SIZE, 1.5).repeat([x.shape[1], 1, 1, 1])
    mcs = []
    for i in range(k):
        ssim_pc, cs = _ssim(x, y, data_range=1.0, win=win, size_average=False, K=(0.01, 0.03))
        if i < k - 1:
            mcs.append(torch.relu(cs))
            pad = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    stack = torch.stack(mcs + [torch.relu(ssim_pc)], dim=0)
    return float(torch.prod(stack ** weights.view(-1, 1, 1), dim=0).mean())


def ms_ssim_rgb(a, b) -> float:
    """MS-SSIM in ``[0, 1]`` (pytorch-msssim, ``data_range=1`` on ``[0, 1]`` floats, all channels).

    Images with a short side <= 160 px use fewer scales (see the module docstring); under
    11 px the result is ``nan``.
    """
    a, b = _pair(a, b)
    k = ms_ssim_scales(a.shape[0], a.shape[1])
    if k == 0:
        return math.nan
    import torch
    from pytorch_msssim import ms_ssim

    with torch.no_grad():
        x, y = _to_tensor(a), _to_tensor(b)
        if k == len(MS_SSIM_WEIGHTS):
            return float(ms_ssim(x, y, data_range=1.0, size_average=True))
        w = np.asarray(MS_SSIM_WEIGHTS[:k], dtype=np.float64)
        return _ms_ssim_weighted(x, y, list(w / w.sum()))


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on a dB scale, ``-10*log10(1 - value)`` (``inf`` for 1.0)."""
    if value >= 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - value)
