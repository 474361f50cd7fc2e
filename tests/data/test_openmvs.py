"""OpenMVS workspaces: the interface archive (`scene.mvs`) and `depth*.dmap` maps, written here
in OpenMVS's layouts (libs/MVS/Interface.h; scripts/python/MvsUtils.py for both `.dmap`
versions) from the synthetic scene, then read back through `load_scene` and compared with
the scene's own cameras, points and ground-truth depth."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from voxsplat.data.load import load_scene
from voxsplat.data.readers.openmvs import NO_ID, denormalized_K, read_dmap, read_openmvs
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from testkit import error_message, rotation


def _string(text: str, size_fmt: str = "<Q") -> bytes:
    raw = text.encode()
    return struct.pack(size_fmt, len(raw)) + raw


def _f64(*arrays) -> bytes:
    return b"".join(np.asarray(a, dtype="<f8").tobytes() for a in arrays)


def write_archive(path: Path, images, points, colors_rgb, *, version: int = 7,
                  normalized: bool = False, mount=None, mask_names=None) -> None:
    """An interface archive, one platform (rig) per image. `images`: (name, K, R, C, size,
    image_id or None for unposed). `mount`: the camera's (R, C) on its rig; the rig pose is
    then chosen so that the image's pose stays (R, C). `mask_names`: each image's mask file
    ("" for none; version 5 on)."""
    out = [b"MVSI", struct.pack("<II", version, 0), struct.pack("<Q", len(images))]
    for name, K, R, C, (W, H), _ in images:
        R_cam, C_cam = mount if mount is not None else (np.eye(3), np.zeros(3))
        R_pose = R_cam.T @ R
        C_pose = C - R_pose.T @ C_cam
        out += [_string(f"rig_{name}"), struct.pack("<Q", 1), _string("PINHOLE")]
        if version > 3:
            out.append(_string(""))
        if version > 0:
            out.append(struct.pack("<II", 0, 0) if normalized else struct.pack("<II", W, H))
        if normalized:
            K = K.copy()
            K[:2] /= max(W, H)
        out += [_f64(K, R_cam, C_cam), struct.pack("<Q", 1), _f64(R_pose, C_pose)]
    out.append(struct.pack("<Q", len(images)))
    for index, (name, *_, image_id) in enumerate(images):
        out.append(_string(name))
        if version > 4:
            out.append(_string(mask_names[index] if mask_names else ""))
        out.append(struct.pack("<III", index, 0, NO_ID if image_id is None else 0))
        if version > 2:
            out.append(struct.pack("<I", index if image_id is None else image_id))
        if version > 6:
            out += [struct.pack("<fff", 1, 2, 3), struct.pack("<Q", 1),
                    struct.pack("<IIffff", 0, 10, 1, 0.1, 0.5, 0.9)]
    out.append(struct.pack("<Q", len(points)))
    for i, X in enumerate(points):  # each point seen by 1 or 2 views (image id, confidence)
        views = [(0, 0.5)] if i % 2 else [(0, 0.5), (1, 0.25)]
        out += [np.asarray(X, "<f4").tobytes(), struct.pack("<Q", len(views))]
        out += [struct.pack("<If", *v) for v in views]
    out += [struct.pack("<Q", 0), struct.pack("<Q", len(points)),
            np.asarray(colors_rgb, np.uint8)[:, ::-1].tobytes()]  # BGR on disk
    out += [struct.pack("<Q", 0)] * 3 + [_f64(np.eye(4))]  # lines, their normals and colours
    path.write_bytes(b"".join(out))


def write_dmap(path: Path, depth: np.ndarray, image_size, name: str, image_id: int,
               K, R, C, *, layout: str = "D2") -> None:
    """One depth map with normals and confidences after it, as OpenMVS writes them."""
    h, w = depth.shape
    exponent = int(np.floor(np.log2(depth.max()))) if layout == "D2" else 0
    out = [layout.encode(), struct.pack("<Bb", 1 + 2 + 4, exponent),
           struct.pack("<IIII", *image_size, w, h), struct.pack("<ff", 0.5, 9.0)]
    if layout == "D2":
        out.append(struct.pack("<f", 1.0))
    out += [_string(name, "<H"), struct.pack("<III", 2, image_id, (image_id + 1) % 4),
            _f64(K, R, C)]
    if layout == "D2":
        out += [np.ldexp(depth, -exponent).astype("<f2").tobytes(),
                np.zeros((h, w, 2), "<i2").tobytes(), np.full((h, w), 200, np.uint8).tobytes()]
    else:
        out += [depth.astype("<f4").tobytes(), np.zeros((h, w, 3), "<f4").tobytes(),
                np.ones((h, w), "<f4").tobytes()]
    path.write_bytes(b"".join(out))


@pytest.fixture(scope="module")
def synth():
    return make_synthetic_scene(SyntheticConfig(width=48, height=36, n_train=4, n_test=0,
                                                n_points=200, supersample=1))


def _workspace(root: Path, synth, **archive_options) -> list:
    """Photos in `root/images`, `root/scene.mvs`, and depth maps for views 0 (D2, half size)
    and 2 (DR, full size); view 1 has none."""
    scene = synth.scene
    (root / "images").mkdir(parents=True)
    images = []
    for i, (img, name) in enumerate(zip(scene.images, scene.names)):
        Image.fromarray(img.numpy()).save(root / "images" / f"{name}.png")
        pose = scene.cameras.cam_from_world[i].double().numpy()
        R, t = pose[:3, :3], pose[:3, 3]
        images.append((f"images/{name}.png", scene.cameras.Ks[i].double().numpy(), R, -R.T @ t,
                       (int(scene.cameras.widths[i]), int(scene.cameras.heights[i])), 10 + i))
    rgb = (scene.point_colors.numpy() * 255).round().astype(np.uint8)
    write_archive(root / "scene.mvs", images, scene.points.numpy(), rgb, **archive_options)
    for i, layout, step in ((0, "D2", 2), (2, "DR", 1)):
        name, K, R, C, size, image_id = images[i]
        write_dmap(root / f"depth{image_id:04d}.dmap", synth.depths[i].numpy()[::step, ::step],
                   size, name, image_id, K, R, C, layout=layout)
    return images


def test_workspace_reads_cameras_points_and_depth_maps(tmp_path, synth):
    """Poses through a rig mount (R = R_cam R_pose, C = C_pose + R_pose^T C_cam), K, points in
    RGB, and each depth map matched to its image by id: float16 (D2) within its rounding and
    resized from half size, float32 (DR) exactly."""
    mount = (rotation((1.0, 0.5, 0.0), 30).numpy(), np.array([0.1, -0.2, 0.3]))
    _workspace(tmp_path, synth, mount=mount)
    scene = load_scene(tmp_path)
    truth = synth.scene
    assert scene.names == truth.names and scene.source.endswith("scene.mvs")
    assert torch.allclose(scene.cameras.cam_from_world, truth.cameras.cam_from_world, atol=1e-5)
    assert torch.allclose(scene.cameras.Ks, truth.cameras.Ks)
    assert all(torch.equal(a, b) for a, b in zip(scene.images, truth.images))
    assert torch.equal(scene.points, truth.points)
    assert torch.allclose(scene.point_colors, truth.point_colors, atol=0.5 / 255)
    d0 = scene.depths[0].numpy()
    expected = np.repeat(np.repeat(synth.depths[0].numpy()[::2, ::2], 2, 0), 2, 1)
    assert np.allclose(d0, expected, rtol=2 ** -10, atol=0) and (d0 > 0).sum() > 200
    assert float(scene.depths[1].abs().max()) == 0
    assert np.array_equal(scene.depths[2].numpy(), synth.depths[2].numpy())
    assert scene.splits["test"] == (0,)


def test_normalized_intrinsics_old_archives_and_unposed_images(tmp_path, synth):
    """Version 0 (no image size, K over max(width, height), no image ids) and an image without
    a pose, which is left out; the archive file itself is accepted too."""
    images = _workspace(tmp_path, synth, version=0, normalized=True)
    assert read_dmap(tmp_path / "depth0010.dmap").image_id == 10
    scene = read_openmvs(tmp_path / "scene.mvs")
    assert torch.allclose(scene.cameras.Ks, synth.scene.cameras.Ks, rtol=1e-6)
    assert scene.depths is not None  # ids are image order in version 0: no map matches
    assert all(float(d.abs().max()) == 0 for d in scene.depths)
    unposed = [images[0][:-1] + (None,)] + images[1:]
    write_archive(tmp_path / "scene.mvs", unposed, synth.scene.points.numpy()[:0],
                  np.zeros((0, 3), np.uint8))
    scene = load_scene(tmp_path / "scene.mvs")
    assert scene.names == synth.scene.names[1:] and scene.points is None


def test_normalized_intrinsics_of_every_openmvs_convention():
    """Plain division (older tools), `Camera::ScaleK` (newer: c_n = (c + 0.5)/s - 0.5) and a
    zero principal point (`ComposeK`: the centre) all read back to the pixel K."""
    K = np.array([[130.0, 0, 78.3], [0, 131.0, 63.1], [0, 0, 1]])
    s = 160.0
    plain = K.copy()
    plain[:2] /= s
    scaled = plain.copy()
    scaled[:2, 2] = (K[:2, 2] + 0.5) / s - 0.5
    np.testing.assert_allclose(denormalized_K(plain, (160, 120)), K, atol=1e-9)
    np.testing.assert_allclose(denormalized_K(scaled, (160, 120)), K, atol=1e-9)
    np.testing.assert_allclose(denormalized_K(plain, (320, 240))[:2], 2 * K[:2], atol=1e-9)
    zero = plain.copy()
    zero[:2, 2] = 0
    np.testing.assert_allclose(denormalized_K(zero, (160, 120))[:2, 2], [80, 60])


def test_masks_named_in_the_archive_are_read_and_resized(tmp_path, synth):
    """Each image's mask file named in the archive: full size as is, a half-size copy resized
    (nearest) to its photo, no name = the whole image; a mask of another aspect is named."""
    scene = synth.scene
    images = _workspace(tmp_path, synth)
    (tmp_path / "masks").mkdir()
    names = ["masks/a.png", "", "masks/c.png", "masks/d.png"]
    full = [m.numpy().astype(np.uint8) * 255 for m in scene.masks]
    Image.fromarray(full[0][::2, ::2]).save(tmp_path / names[0])
    Image.fromarray(full[2]).save(tmp_path / names[2])
    Image.fromarray(full[3]).save(tmp_path / names[3])
    rgb = np.zeros((len(scene.points), 3), np.uint8)
    write_archive(tmp_path / "scene.mvs", images, scene.points.numpy(), rgb, mask_names=names)
    masks = load_scene(tmp_path).masks
    half = np.repeat(np.repeat(full[0][::2, ::2] > 0, 2, 0), 2, 1)
    assert np.array_equal(masks[0].numpy(), half) and masks[0].any()
    assert bool(masks[1].all())
    assert torch.equal(masks[2], scene.masks[2]) and torch.equal(masks[3], scene.masks[3])
    Image.fromarray(full[3][:, :20]).save(tmp_path / names[3])
    assert "d.png: mask is 20x36 but its image is 48x36" in error_message(load_scene, tmp_path)


def test_bad_workspaces_name_the_file_and_the_fix(tmp_path, synth):
    _workspace(tmp_path, synth)
    data = (tmp_path / "scene.mvs").read_bytes()
    (tmp_path / "scene.mvs").write_bytes(data[:-200])
    assert "scene.mvs: file ends early (truncated?)" in error_message(load_scene, tmp_path)
    (tmp_path / "scene.mvs").write_bytes(data)
    (tmp_path / "depth0012.dmap").write_bytes(b"PK\x03\x04")
    assert "depth0012.dmap: not an OpenMVS depth map" in error_message(load_scene, tmp_path)
    (tmp_path / "depth0012.dmap").unlink()
    (tmp_path / "images" / f"{synth.scene.names[3]}.png").unlink()
    message = error_message(load_scene, tmp_path)
    assert f"image images/{synth.scene.names[3]}.png not found" in message
    (tmp_path / "scene.mvs").write_bytes(b"\x00" * 64)
    assert "not an OpenMVS interface archive" in error_message(load_scene, tmp_path)
