"""PSNR and SSIM against known values, skimage, and a plain 2D-convolution SSIM."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from voxsplat.render.metrics import psnr, ssim, ssim_map


def noisy_pair(shape, noise=0.1, seed=0, dtype=torch.float32):
    """A smooth-ish random image and a noisy copy, both in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(shape, generator=g, dtype=torch.float64)
    gt = (gt + gt.roll(1, -2) + gt.roll(1, -3)) / 3  # some spatial structure
    img = (gt + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return img.to(dtype), gt.to(dtype)


def test_psnr_of_a_constant_offset():
    gt = torch.rand(2, 16, 20, 3) * 0.9
    value = psnr(gt + 0.1, gt)
    assert value.shape == (2,)
    torch.testing.assert_close(value, torch.full((2,), 20.0), atol=1e-4, rtol=0)
    assert torch.isinf(psnr(gt, gt)).all()


def test_psnr_matches_mse_formula():
    img, gt = noisy_pair((3, 2, 9, 7, 3), dtype=torch.float64)
    mse = ((img - gt) ** 2).mean(dim=(-3, -2, -1))
    torch.testing.assert_close(psnr(img, gt), -10 * torch.log10(mse))


def test_masked_psnr_ignores_pixels_outside_the_mask():
    gt = torch.rand(2, 12, 10, 3) * 0.9
    img = gt + 0.1
    mask = torch.zeros(12, 10, dtype=torch.bool)
    mask[2:8, 3:9] = True
    img[:, ~mask] = torch.rand(2, int((~mask).sum()), 3)  # garbage outside
    torch.testing.assert_close(psnr(img, gt, mask), torch.full((2,), 20.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(psnr(img, gt, mask[..., None]), psnr(img, gt, mask))
    torch.testing.assert_close(psnr(img, gt, mask.expand(2, 12, 10)), psnr(img, gt, mask))


@pytest.mark.parametrize("shape", [(32, 32, 3), (40, 27, 3), (11, 11, 3)])
def test_ssim_matches_skimage(shape):
    metrics = pytest.importorskip("skimage.metrics")
    img, gt = noisy_pair(shape)
    expected = metrics.structural_similarity(
        img.numpy(), gt.numpy(), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1, channel_axis=-1)
    assert abs(ssim(img, gt).item() - expected) < 1e-4


def test_ssim_is_batched_and_one_for_identical_images():
    metrics = pytest.importorskip("skimage.metrics")
    img, gt = noisy_pair((2, 3, 24, 30, 3))
    value = ssim(img, gt)
    assert value.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            expected = metrics.structural_similarity(
                img[i, j].numpy(), gt[i, j].numpy(), gaussian_weights=True, sigma=1.5,
                use_sample_covariance=False, data_range=1, channel_axis=-1)
            assert abs(value[i, j].item() - expected) < 1e-4
    torch.testing.assert_close(ssim(gt, gt), torch.ones(2, 3))
    torch.testing.assert_close(ssim(gt, gt, padding="same"), torch.ones(2, 3))


def _ssim_map_2d_reference(img, gt):
    """The 3DGS reference: a full 11x11 window, conv2d with zero padding, [B,3,H,W] layout."""
    x = torch.arange(11, dtype=img.dtype) - 5
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(3, 1, 11, 11)

    def blur(t):
        return F.conv2d(t, window, padding=5, groups=3)

    mu1, mu2 = blur(img), blur(gt)
    s11, s22, s12 = blur(img * img) - mu1**2, blur(gt * gt) - mu2**2, blur(img * gt) - mu1 * mu2
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))


def test_separable_ssim_map_matches_full_2d_convolution():
    img, gt = noisy_pair((2, 20, 17, 3), dtype=torch.float64)
    expected = _ssim_map_2d_reference(img.permute(0, 3, 1, 2), gt.permute(0, 3, 1, 2))
    same = ssim_map(img, gt, padding="same")
    assert same.shape == (2, 20, 17, 3)
    torch.testing.assert_close(same, expected.permute(0, 2, 3, 1))
    torch.testing.assert_close(ssim_map(img, gt), same[:, 5:-5, 5:-5])


def test_ssim_is_differentiable():
    img, gt = noisy_pair((1, 12, 13, 3), dtype=torch.float64)
    img.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: ssim(x, gt), (img,))
    assert torch.autograd.gradcheck(lambda x: ssim(x, gt, padding="same"), (img,))
    loss = 1 - ssim(img.float(), gt.float(), padding="same").mean()
    loss.backward()
    assert img.grad is not None and torch.isfinite(img.grad).all()


def test_masked_ssim_averages_the_map_inside_the_mask():
    img, gt = noisy_pair((2, 40, 36, 3), dtype=torch.float64)
    mask = torch.zeros(40, 36)
    mask[12:25, 10:22] = 1
    # A rectangular mask equals plain SSIM of the crop with a 5-pixel margin for the window.
    expected = ssim(img[:, 7:30, 5:27], gt[:, 7:30, 5:27])
    torch.testing.assert_close(ssim(img, gt, mask), expected)
    torch.testing.assert_close(ssim(img, gt, mask[..., None].bool()), expected)
    # Pixels farther than the window radius from the mask do not matter.
    changed = img.clone()
    changed[:, :6] = 0
    changed[:, :, 28:] = 1
    torch.testing.assert_close(ssim(changed, gt, mask), expected)
    same = ssim_map(img, gt, padding="same")[:, 12:25, 10:22].mean(dim=(-3, -2, -1))
    torch.testing.assert_close(ssim(img, gt, mask, padding="same"), same)


def test_shape_errors():
    img = torch.rand(8, 8, 3)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(img, img)
    assert math.isclose(ssim(img, img, padding="same").item(), 1.0, rel_tol=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        psnr(img, img[:4])
    with pytest.raises(ValueError, match="mask"):
        psnr(img, img, torch.ones(4, 4))
