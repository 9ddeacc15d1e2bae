import math

import numpy as np
import pytest
import torch
from PIL import Image

from gqcodec import metrics


def _image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255.0 / max(w - 1, 1), y * 255.0 / max(h - 1, 1), (x + y) * 127.0 / max(h + w - 2, 1)], -1)
    base += rng.normal(0, 12, size=base.shape)
    return np.clip(np.round(base), 0, 255).astype(np.uint8)


def _noisy(img, sigma, seed=1):
    rng = np.random.default_rng(seed)
    return np.clip(np.round(img + rng.normal(0, sigma, img.shape)), 0, 255).astype(np.uint8)


def test_psnr_identical_is_inf():
    a = _image(32, 40)
    assert metrics.psnr_rgb(a, a.copy()) == math.inf
    assert metrics.mse_rgb(a, a) == 0.0


def test_psnr_constant_offset_of_one():
    a = np.full((20, 30, 3), 100, np.uint8)
    b = a + 1
    expected = 10 * math.log10(255.0 ** 2)  # MSE = 1
    assert expected == pytest.approx(48.1308036, abs=1e-6)
    assert metrics.psnr_rgb(a, b) == pytest.approx(expected, abs=1e-12)
    assert metrics.psnr_rgb(b, a) == pytest.approx(expected, abs=1e-12)


def test_psnr_known_mse_over_all_channels():
    a = _image(16, 16)
    b = a.astype(np.int16)
    b[..., 0] = np.where(b[..., 0] < 128, b[..., 0] + 3, b[..., 0] - 3)  # only R changes, by 3
    b = b.astype(np.uint8)
    mse = 9.0 / 3.0  # squared error 9 in one of three channels
    assert metrics.mse_rgb(a, b) == pytest.approx(mse)
    assert metrics.psnr_rgb(a, b) == pytest.approx(10 * math.log10(255.0 ** 2 / mse), abs=1e-12)


def test_psnr_grayscale_and_pil_inputs():
    a = np.full((10, 12), 50, np.uint8)
    b = a.copy()
    b[0, :] += 12  # 12 of 120 pixels off by 12 -> MSE 14.4
    assert metrics.psnr_rgb(a, b) == pytest.approx(10 * math.log10(255.0 ** 2 / 14.4))
    rgb = _image(8, 8)
    assert metrics.psnr_rgb(Image.fromarray(rgb), rgb) == math.inf


def test_metric_input_errors():
    a = _image(8, 8)
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr_rgb(a, a[:4])
    with pytest.raises(TypeError, match="uint8"):
        metrics.psnr_rgb(a.astype(np.float32), a)
    with pytest.raises(ValueError):
        metrics.ms_ssim_rgb(np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 4), np.uint8))


@pytest.mark.parametrize("h,w", [(192, 176), (64, 48)])
def test_ms_ssim_identical_is_one_and_decreases_with_noise(h, w):
    a = _image(h, w)
    assert metrics.ms_ssim_rgb(a, a) == pytest.approx(1.0, abs=1e-6)
    vals = [metrics.ms_ssim_rgb(a, _noisy(a, s)) for s in (2, 8, 25)]
    assert 1.0 > vals[0] > vals[1] > vals[2] > 0.0
    assert metrics.ms_ssim_rgb(a, _noisy(a, 8)) == vals[1]  # deterministic, bit-exact


def test_ms_ssim_scales_by_size():
    assert [metrics.ms_ssim_scales(s, 500) for s in (10, 11, 20, 21, 40, 41, 80, 81, 160, 161, 768)] == \
        [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert math.isnan(metrics.ms_ssim_rgb(_image(8, 30), _image(8, 30)))


def test_ms_ssim_matches_pytorch_msssim():
    from pytorch_msssim import ms_ssim

    a = _image(170, 165)
    b = _noisy(a, 10)
    x = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    y = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255
    ref = float(ms_ssim(x, y, data_range=1.0))
    assert metrics.ms_ssim_rgb(a, b) == ref
    # the reduced-scale path, run with all 5 standard weights, reproduces the library
    assert metrics._ms_ssim_weighted(x, y, list(metrics.MS_SSIM_WEIGHTS)) == pytest.approx(ref, abs=1e-7)


def test_ms_ssim_grayscale():
    a = _image(64, 64)[..., 0]
    assert metrics.ms_ssim_rgb(a, a) == pytest.approx(1.0, abs=1e-6)
    assert metrics.ms_ssim_rgb(a, _noisy(a, 10)) < 1.0


def test_ms_ssim_db():
    assert metrics.ms_ssim_db(0.9) == pytest.approx(10.0)
    assert metrics.ms_ssim_db(0.99) == pytest.approx(20.0)
    assert metrics.ms_ssim_db(1.0) == math.inf
