"""read_mask on the mask files users make: 0/1, 16-bit, coloured, palette, soft and JPEG masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from voxsplat.data.images import read_mask

H, W = 32, 48


def _truth() -> np.ndarray:
    """The object: a block on 8-pixel boundaries (so JPEG blocks are all in or all out)."""
    mask = np.zeros((H, W), bool)
    mask[8:24, 16:40] = True
    return mask


def _gray(on: int, dtype=np.uint8) -> Image.Image:
    return Image.fromarray(_truth().astype(dtype) * on)


def _rgb(colour: tuple[int, int, int]) -> Image.Image:
    array = np.zeros((H, W, 3), np.uint8)
    array[_truth()] = colour
    return Image.fromarray(array)


def _voc_palette() -> Image.Image:
    img = Image.fromarray(_truth().astype(np.uint8))  # index 1 = object
    palette = [0, 0, 0, 128, 0, 0] + [255, 255, 255] * 254
    img.putpalette(palette)
    assert img.mode == "P"
    return img


def _rgba_alpha_over_colour() -> Image.Image:
    """A background remover's cut-out: photo-like colours everywhere, object opaque."""
    array = np.full((H, W, 4), 200, np.uint8)
    array[:, :, 3] = np.where(_truth(), 255, 0)
    return Image.fromarray(array)


WRITTEN = {
    # read as empty before: the object is a small value or a colour other than red
    "8bit_0_1": lambda: _gray(1),
    "16bit_0_255": lambda: _gray(255, np.uint16),
    "16bit_0_1": lambda: _gray(1, np.uint16),
    "rgb_green": lambda: _rgb((0, 255, 0)),
    "rgb_blue": lambda: _rgb((0, 0, 255)),
    # read right before, and still
    "8bit_0_255": lambda: _gray(255),
    "16bit_0_65535": lambda: _gray(65535, np.uint16),
    "mode_1": lambda: Image.fromarray(_truth()),
    "voc_palette": _voc_palette,
    "rgb_red": lambda: _rgb((255, 0, 0)),
    "rgb_white": lambda: _rgb((255, 255, 255)),
    "rgba_alpha": _rgba_alpha_over_colour,
}


@pytest.mark.parametrize("kind", sorted(WRITTEN))
def test_read_mask_reads_binary_masks(tmp_path, kind):
    img = WRITTEN[kind]()
    img.save(tmp_path / "m.png")
    if kind.startswith("16bit"):
        assert Image.open(tmp_path / "m.png").mode.startswith("I")  # really 16-bit on disk
    out = read_mask(tmp_path / "m.png")
    assert out.dtype == torch.bool and out.shape == (H, W)
    np.testing.assert_array_equal(out.numpy(), _truth())


def test_read_mask_one_value_is_all_or_nothing(tmp_path):
    Image.fromarray(np.ones((H, W), np.uint8)).save(tmp_path / "ones.png")
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "zeros.png")
    assert read_mask(tmp_path / "ones.png").all()
    assert not read_mask(tmp_path / "zeros.png").any()


def test_read_mask_soft_edges_threshold_at_half_range(tmp_path):
    """An anti-aliased 8-bit mask: grey edges count from 128 up."""
    ramp = np.tile(np.linspace(0, 255, W).round().astype(np.uint8), (H, 1))
    Image.fromarray(ramp).save(tmp_path / "soft.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "soft.png").numpy(), ramp > 127)


def test_read_mask_soft_16bit_thresholds_at_half_its_range(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, W).round().astype(np.uint16), (H, 1))
    Image.fromarray(ramp).save(tmp_path / "soft16.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "soft16.png").numpy(), ramp > 32767)


def test_read_mask_soft_16bit_with_8bit_values_thresholds_at_127(tmp_path):
    """A 16-bit file holding 0..255 levels (an 8-bit mask saved wide) reads as 8-bit."""
    ramp = np.tile(np.linspace(0, 255, W).round().astype(np.uint16), (H, 1))
    Image.fromarray(ramp).save(tmp_path / "soft16_8.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "soft16_8.png").numpy(), ramp > 127)


def test_read_mask_jpeg_noise_on_black_stays_empty(tmp_path):
    noise = np.random.default_rng(0).integers(0, 4, (H, W), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "black.jpg", quality=90)
    assert not read_mask(tmp_path / "black.jpg").any()


def test_read_mask_jpeg_two_low_levels_stay_empty(tmp_path):
    """A JPEG is thresholded at half range even when it decodes to only 0 and 1: on a lossy
    file those are as likely compression noise on black as a 0/1 mask."""
    Image.fromarray(_truth().astype(np.uint8)).save(tmp_path / "low.jpg", quality=100)
    assert not read_mask(tmp_path / "low.jpg").any()


def test_read_mask_jpeg_0_255_stays_right(tmp_path):
    _gray(255).save(tmp_path / "m.jpg", quality=95)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.jpg").numpy(), _truth())


def test_read_mask_keeps_stored_pixels(tmp_path):
    """A mask is read as stored by default (as COLMAP reads masks, and the readers photos:
    a JPEG mask that copied its photo's EXIF stays on its photo); exif=True turns it."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    _gray(255).save(tmp_path / "m.png", exif=exif)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png").numpy(), _truth())
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png", exif=True).numpy(),
                                  np.rot90(_truth(), -1))
