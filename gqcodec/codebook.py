"""The fixed Gaussian codebook of Gaussian Quant (the generator lives in :mod:`bitstream.codebook`,
which decoders of the format need without torch; this module adds the torch view)."""
from __future__ import annotations

import numpy as np

from bitstream.codebook import (GENERATOR, MAX_LOG2_K, MAX_M, check_params, codebook_hash, codebook_np,  # noqa: F401
                                codebook_rows)


def codebook(seed: int, K: int, m: int):
    """The (K, m) float32 codebook as a torch tensor (a fresh copy)."""
    import torch

    return torch.from_numpy(np.array(codebook_np(seed, K, m)))
