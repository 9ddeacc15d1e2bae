"""Generalized divisive normalization (Balle et al. 2016), light to import.

``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)`` (``inverse=True``: times the
square root).  ``beta`` and ``gamma`` are stored reparameterised exactly as in
``compressai.layers.GDN`` (``value = max(p, bound)^2 - pedestal`` with
``pedestal = 2^-36``), with the same state-dict keys, so weights are
interchangeable with CompressAI's; the lower bound passes gradients that push
parameters back above it, as CompressAI's ``LowerBound`` does.  We keep our own
module because importing ``compressai`` costs ~2 s (it pulls in its datasets
and torch_geometric), which every ``gqcodec decompress`` would pay; the test
suite checks that both modules compute the same outputs and gradients.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _LowerBoundFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad):
        x, bound = ctx.saved_tensors
        # pass the gradient where x is above the bound, or where descending it would raise x
        pass_through = (x >= bound) | (grad < 0)
        return grad * pass_through, None


class _LowerBound(nn.Module):
    def __init__(self, bound: float):
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]))

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            return _LowerBoundFn.apply(x, self.bound)
        return torch.max(x, self.bound)


class _NonNegative(nn.Module):
    def __init__(self, minimum: float = 0.0, offset: float = 2**-18):
        super().__init__()
        self.register_buffer("pedestal", torch.tensor([offset**2]))
        self.lower_bound = _LowerBound((minimum + offset**2) ** 0.5)

    def init(self, x):
        return torch.sqrt(torch.max(x + self.pedestal, self.pedestal))

    def forward(self, x):
        return self.lower_bound(x) ** 2 - self.pedestal


class GDN(nn.Module):
    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = _NonNegative(minimum=beta_min)
        self.gamma_reparam = _NonNegative()
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x):
        c = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(c, c, 1, 1)
        norm = F.conv2d(x * x, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))
