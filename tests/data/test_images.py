"""read_image / read_mask / composite / resize_image on synthetic files of every mode."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from voxsplat.data.errors import VoxsplatError
from voxsplat.data.images import composite, read_image, read_mask, resize_image


def _exif_orientation(value: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = value  # Orientation
    return exif


def test_rgb_png_roundtrip(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (5, 7, 3), np.uint8)
    Image.fromarray(array).save(tmp_path / "a.png")
    rgb, alpha = read_image(tmp_path / "a.png")
    assert rgb.dtype == torch.uint8 and rgb.shape == (5, 7, 3) and alpha is None
    np.testing.assert_array_equal(rgb.numpy(), array)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".heic"])
def test_exif_orientation_6_rotates_clockwise(tmp_path, suffix):
    if suffix == ".heic":  # iPhone photos, through pillow-heif
        pytest.importorskip("pillow_heif").register_heif_opener()
    array = np.zeros((16, 32, 3), np.uint8)  # H=16, W=32; left half red, right half blue
    array[:, :16] = (255, 0, 0)
    array[:, 16:] = (0, 0, 255)
    path = tmp_path / f"rotated{suffix}"
    Image.fromarray(array).save(path, exif=_exif_orientation(6).tobytes(), **(
        {"quality": 100, "subsampling": 0} if suffix == ".jpg" else
        {"quality": -1, "chroma": 444} if suffix == ".heic" else {}))
    rgb, _ = read_image(path)
    assert rgb.shape == (32, 16, 3)  # displayed upright: 90 degrees clockwise
    expected = np.rot90(array, k=-1)
    assert np.abs(rgb.numpy().astype(int) - expected).max() <= (0 if suffix == ".png" else 40)
    assert rgb[0, 0, 0] > 200 and rgb[-1, 0, 2] > 200  # red on top, blue at the bottom


def test_heic_without_pillow_heif_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic")
    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    with pytest.raises(VoxsplatError, match="IMG_0001.HEIC: a HEIC photo.*pip install pillow-heif"):
        read_image(tmp_path / "IMG_0001.HEIC")


def test_rgba_keeps_alpha(tmp_path):
    array = np.random.default_rng(1).integers(0, 256, (4, 6, 4), np.uint8)
    Image.fromarray(array, "RGBA").save(tmp_path / "a.png")
    rgb, alpha = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(rgb.numpy(), array[:, :, :3])
    np.testing.assert_array_equal(alpha.numpy(), array[:, :, 3])


def test_la_gray_with_alpha(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    alpha = np.full((3, 4), 128, np.uint8)
    Image.fromarray(np.stack([gray, alpha], axis=2), "LA").save(tmp_path / "la.png")
    rgb, a = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(rgb.numpy(), np.repeat(gray[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(a.numpy(), alpha)


def test_grayscale_l(tmp_path):
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgb, alpha = read_image(tmp_path / "g.png")
    assert alpha is None
    np.testing.assert_array_equal(rgb.numpy(), np.repeat(gray[:, :, None], 3, axis=2))


def test_sixteen_bit_gray_scaled_to_eight(tmp_path):
    values = np.array([[0, 257, 257 * 100], [257 * 200, 65535, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    rgb, alpha = read_image(tmp_path / "g16.png")
    assert alpha is None and rgb.dtype == torch.uint8
    np.testing.assert_array_equal(rgb[:, :, 0].numpy(), [[0, 1, 100], [200, 255, 255]])


def test_palette_without_and_with_transparency(tmp_path):
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9)
    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    img = Image.fromarray(indices, "P")
    img.putpalette(palette)
    img.save(tmp_path / "p.png")
    rgb, alpha = read_image(tmp_path / "p.png")
    assert alpha is None
    np.testing.assert_array_equal(rgb[0].numpy(), [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    img.save(tmp_path / "pt.png", transparency=1)  # palette index 1 is transparent
    rgb, alpha = read_image(tmp_path / "pt.png")
    np.testing.assert_array_equal(alpha.numpy(), [[255, 0, 255], [255, 0, 255]])
    np.testing.assert_array_equal(rgb[0, 0].numpy(), [255, 0, 0])


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = np.zeros((8, 8, 4), np.uint8)
    cmyk[:, :4, 0] = 255  # left: full cyan -> (0, 255, 255); right: no ink -> white
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.jpg", quality=100)
    rgb, alpha = read_image(tmp_path / "c.jpg")
    assert alpha is None and rgb.shape == (8, 8, 3)
    assert np.abs(rgb[4, 1].numpy().astype(int) - [0, 255, 255]).max() < 30
    assert np.abs(rgb[4, 6].numpy().astype(int) - [255, 255, 255]).max() < 30


def test_colour_profiles_are_converted_to_srgb(tmp_path):
    """A Display P3 photo (an iPhone's) was read as if its values were sRGB: its reds and
    greens came out duller than any viewer shows them. Its values now go through its profile
    to sRGB, as the reference conversion by the profile's matrices and curves gives them;
    alpha is kept; sRGB-tagged, untagged and unusable profiles read as stored."""
    from PIL import ImageCms
    from data_testkit import P3_D50, p3_to_srgb, rgb_icc_profile
    stored = np.array([[[200, 100, 50], [128, 128, 128], [30, 200, 90], [90, 40, 220]]], np.uint8)
    p3 = rgb_icc_profile("Display P3 (test)", *P3_D50)
    Image.fromarray(stored).save(tmp_path / "p3.png", icc_profile=p3)
    rgb, alpha = read_image(tmp_path / "p3.png")
    expected = p3_to_srgb(stored)
    assert np.abs(rgb.numpy().astype(int) - expected).max() <= 1 and alpha is None
    assert (expected != stored).any()  # (the test's colours differ between the spaces)
    rgba = np.dstack([stored, np.array([[255, 0, 100, 255]], np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "p3a.png", icc_profile=p3)
    rgb, alpha = read_image(tmp_path / "p3a.png")
    assert np.abs(rgb.numpy().astype(int) - expected).max() <= 1
    assert alpha.tolist() == [[255, 0, 100, 255]]
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for name, profile in (("srgb.png", srgb), ("broken.png", b"not a profile" * 10), ("none.png", None)):
        Image.fromarray(stored).save(tmp_path / name, **({"icc_profile": profile} if profile else {}))
        assert read_image(tmp_path / name)[0].numpy().tolist() == stored.tolist(), name


@pytest.mark.parametrize("content", [b"", b"not an image at all", "truncated"])
def test_corrupt_files_raise_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.png"
    if content == "truncated":
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_bytes(content)
    with pytest.raises(VoxsplatError, match="broken.png: cannot read image .*valid JPEG/PNG"):
        read_image(path)


def test_missing_file_and_folder_raise(tmp_path):
    with pytest.raises(VoxsplatError, match=r"nope.png: cannot read image \(no such file\)"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(VoxsplatError, match="cannot read image"):
        read_image(tmp_path)


def test_read_mask_thresholds_soft_masks_at_half_range_on_any_channel(tmp_path):
    mask = np.zeros((3, 4, 3), np.uint8)
    mask[0, :, 0] = 128
    mask[1, :, 0] = 127
    mask[2, :, 1] = 255  # a green object counts too
    Image.fromarray(mask).save(tmp_path / "m.png")
    out = read_mask(tmp_path / "m.png")
    assert out.dtype == torch.bool and out.shape == (3, 4)
    assert out[0].all() and not out[1].any() and out[2].all()


def test_composite():
    rgb = torch.tensor([[[200, 100, 0], [10, 20, 30], [0, 0, 0]]], dtype=torch.uint8)
    alpha = torch.tensor([[255, 0, 128]], dtype=torch.uint8)
    out = composite(rgb, alpha, (1.0, 0.0, 0.5))
    assert out.dtype == torch.uint8
    np.testing.assert_array_equal(out[0, 0].numpy(), [200, 100, 0])
    np.testing.assert_array_equal(out[0, 1].numpy(), [255, 0, 128])
    np.testing.assert_allclose(out[0, 2].numpy(), [127.5, 0, 63.75], atol=1)
    assert composite(rgb, None) is rgb
    with pytest.raises(VoxsplatError, match="background"):
        composite(rgb, alpha, (2.0, 0.0, 0.0))


def test_resize_image_area_average_and_shapes():
    img = torch.zeros((4, 4, 3), dtype=torch.uint8)
    img[:2, :2] = 200
    img[0, 0] = 0  # top-left 2x2 block averages to 150
    small = resize_image(img, (2, 2))
    assert small.shape == (2, 2, 3)
    np.testing.assert_array_equal(small[:, :, 0].numpy(), [[150, 0], [0, 0]])
    assert resize_image(img[:, :, 0], (2, 2)).shape == (2, 2)
    assert resize_image(img, (8, 6)).shape == (6, 8, 3)
    mask = torch.zeros((4, 4), dtype=torch.bool)
    mask[:2, :] = True
    mask[1, 0] = False  # the left block is 3/4 set
    out = resize_image(mask, (2, 2))
    assert out.dtype == torch.bool
    np.testing.assert_array_equal(out.numpy(), [[True, True], [False, False]])


def test_opaque_alpha_is_no_mask_and_transparent_alpha_is(tmp_path):
    """A photo saved as RGBA with alpha 255 everywhere has no mask (it would switch a whole
    scene to the masked settings); one transparent pixel makes the alpha a mask."""
    array = np.full((6, 8, 4), 255, np.uint8)
    array[:, :, :3] = np.random.default_rng(0).integers(0, 256, (6, 8, 3), np.uint8)
    Image.fromarray(array).save(tmp_path / "opaque.png")
    rgb, alpha = read_image(tmp_path / "opaque.png")
    assert alpha is None
    np.testing.assert_array_equal(rgb.numpy(), array[:, :, :3])
    array[0, 0, 3] = 254
    Image.fromarray(array).save(tmp_path / "one.png")
    _, alpha = read_image(tmp_path / "one.png")
    assert alpha is not None and alpha[0, 0] == 254 and alpha[1:].min() == 255


def test_exif_false_keeps_the_stored_pixels(tmp_path):
    """Posed readers read pixels as stored: COLMAP and nerfstudio ignore the EXIF tag."""
    array = np.random.default_rng(1).integers(0, 256, (16, 32, 3), np.uint8)
    Image.fromarray(array).save(tmp_path / "tagged.png", exif=_exif_orientation(6).tobytes())
    stored, _ = read_image(tmp_path / "tagged.png", exif=False)
    upright, _ = read_image(tmp_path / "tagged.png")
    np.testing.assert_array_equal(stored.numpy(), array)
    np.testing.assert_array_equal(upright.numpy(), np.rot90(array, k=-1))


def test_float_tiff_in_zero_to_one_is_scaled(tmp_path):
    gray = np.linspace(0.0, 1.0, 48, dtype=np.float32).reshape(6, 8)
    Image.fromarray(gray).save(tmp_path / "linear.tiff")
    rgb, _ = read_image(tmp_path / "linear.tiff")
    np.testing.assert_array_equal(rgb[:, :, 1].numpy(), np.round(gray * 255).astype(np.uint8))
    Image.fromarray(gray * 200).save(tmp_path / "counts.tiff")  # already 0..255
    rgb, _ = read_image(tmp_path / "counts.tiff")
    assert rgb.max() == 200


def test_read_mask_takes_a_transparent_alpha_over_black_rgb(tmp_path):
    """Background removers write the object's mask into the alpha of a black image."""
    array = np.zeros((6, 8, 4), np.uint8)
    array[2:4, 3:6, 3] = 255
    Image.fromarray(array).save(tmp_path / "cutout.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "cutout.png").numpy(), array[:, :, 3] > 127)
