import numpy as np
import torch

from bitstream import Prior
from gqcodec.model import GQConfig, GQVAE
from gqcodec.prior import cross_entropy_bits, index_counts, prior_from_counts


def test_prior_from_counts_is_add_alpha_smoothing_in_integers():
    counts = np.array([[0, 5, 20, 0], [3, 3, 3, 3]])
    p = prior_from_counts(counts, 0.1)
    assert isinstance(p, Prior) and p.freqs.tolist() == [[1, 51, 201, 1], [31, 31, 31, 31]]
    probs = p.freqs / p.freqs.sum(1, keepdims=True)
    expect = (counts + 0.1) / (counts + 0.1).sum(1, keepdims=True)
    assert np.allclose(probs, expect)


def test_cross_entropy_matches_definition_and_uniform():
    counts = np.array([[10, 0, 5, 1]])
    uni = Prior.uniform(4)
    assert cross_entropy_bits(counts, uni) == 2.0
    p = prior_from_counts(counts, 0.5)
    q = p.freqs[0] / p.freqs[0].sum()
    assert np.isclose(cross_entropy_bits(counts, p), -(counts[0] * np.log2(q)).sum() / counts.sum())
    assert cross_entropy_bits(counts, p) < 2.0


def test_index_counts_counts_every_block():
    torch.manual_seed(0)
    m = GQVAE(GQConfig(N=8, C=32, m=16, K_bits=6)).eval()
    imgs = [torch.randint(0, 256, (3, 40, 56), dtype=torch.uint8) for _ in range(2)]
    c = index_counts(m, imgs, crop=32)
    assert c.shape == (2, 64)
    assert np.all(c.sum(1) == 2 * 2 * 2)  # 2 images x (32/16)^2 positions per block
