"""Lens distortion in transforms.json (nerfstudio's OPENCV / OPENCV_FISHEYE): photos taken
through a distorting lens are resampled onto pinhole cameras that see the same scene."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from voxsplat.data.errors import VoxsplatError
from voxsplat.data.load import load_scene
from voxsplat.data.readers.lens import Lens, distort, lens_of, max_shift_px, pinhole_for
from voxsplat.data.synthetic import SyntheticConfig, cast_rays, make_synthetic_scene, surface_color
from voxsplat.render.metrics import psnr

W, H = 160, 120
OPENCV = Lens("OPENCV", (-0.25, 0.06, 0.0, 0.0), (0.002, -0.001))
FISHEYE = Lens("OPENCV_FISHEYE", (0.05, -0.01, 0.0, 0.0), (0.0, 0.0))
EQUIDISTANT = Lens("OPENCV_FISHEYE", (0.0, 0.0, 0.0, 0.0), (0.0, 0.0))  # k = 0: still a fisheye


def _undistort_points(xy_d: torch.Tensor, lens: Lens) -> torch.Tensor:
    """Undistorted normalized coordinates of distorted ones, by Newton's method on a numeric
    Jacobian: the inverse the reader never needs, as an independent check of `distort`."""
    xy = xy_d.clone()
    eps = 1e-7
    for _ in range(8):
        f = distort(xy, lens) - xy_d
        jx = (distort(xy + torch.tensor([eps, 0.0], dtype=xy.dtype), lens) - distort(xy, lens)) / eps
        jy = (distort(xy + torch.tensor([0.0, eps], dtype=xy.dtype), lens) - distort(xy, lens)) / eps
        J = torch.stack([jx, jy], -1)  # [N,2,2]: columns d/dx, d/dy
        xy = xy - torch.linalg.solve(J, f[..., None])[..., 0]
    return xy


def _render(cam_from_world: torch.Tensor, K: torch.Tensor, lens: Lens | None) -> np.ndarray:
    """uint8 [H,W,3] ray-cast view of the synthetic objects on white, 2x2 supersampled,
    through `lens` (None: pinhole)."""
    s = 2
    v, u = torch.meshgrid((torch.arange(H * s, dtype=torch.float64) + 0.5) / s,
                          (torch.arange(W * s, dtype=torch.float64) + 0.5) / s, indexing="ij")
    K = K.double()
    xy = torch.stack([(u.reshape(-1) - K[0, 2]) / K[0, 0], (v.reshape(-1) - K[1, 2]) / K[1, 1]], -1)
    if lens is not None:
        xy = _undistort_points(xy, lens)
    rot, trans = cam_from_world[:3, :3].double(), cam_from_world[:3, 3].double()
    dirs = (torch.cat([xy, torch.ones(len(xy), 1, dtype=torch.float64)], 1) @ rot).float()
    origins = (-(rot.T @ trans)).float().expand_as(dirs)
    t, normals, ids = cast_rays(origins, dirs)
    color = torch.ones(len(dirs), 3)
    hit = ids >= 0
    color[hit] = surface_color(origins[hit] + t[hit, None] * dirs[hit], normals[hit], ids[hit])
    image = color.reshape(H, s, W, s, 3).mean((1, 3))
    return (image * 255).round().byte().numpy()


def _capture(root, lens: Lens, n: int = 3):
    """A transforms.json capture of `n` synthetic views taken through `lens`."""
    synth = make_synthetic_scene(SyntheticConfig(width=W, height=H, n_train=n, n_test=0, n_points=10,
                                                 supersample=1))
    cams = synth.scene.cameras
    K = cams.Ks[0]
    (root / "images").mkdir(parents=True)
    frames = []
    for i in range(n):
        Image.fromarray(_render(cams.cam_from_world[i], K, lens)).save(root / "images" / f"{i}.png")
        c2w = torch.linalg.inv(cams.cam_from_world[i].double()) @ torch.diag(
            torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))
        frames.append({"file_path": f"images/{i}.png", "transform_matrix": c2w.tolist()})
    meta = {"camera_model": lens.model, "fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]),
            "cx": float(K[0, 2]), "cy": float(K[1, 2]), "w": W, "h": H,
            "k1": lens.k[0], "k2": lens.k[1], "k3": lens.k[2], "k4": lens.k[3], "frames": frames}
    if lens.model == "OPENCV":
        meta |= {"p1": lens.p[0], "p2": lens.p[1]}
    (root / "transforms.json").write_text(json.dumps(meta))
    return cams


@pytest.mark.parametrize("lens, ngp", [(OPENCV, False), (FISHEYE, False), (EQUIDISTANT, False),
                                       (FISHEYE, True)],
                         ids=["opencv", "fisheye", "fisheye-k0", "fisheye-instant-ngp"])
def test_distorted_photos_become_the_pinhole_views_of_the_scene(tmp_path, lens, ngp):
    """(instant-ngp's colmap2nerf.py marks a fisheye `is_fisheye: true`, with no camera_model:
    it was undistorted as OPENCV, 5.6 px off)"""
    cams = _capture(tmp_path, lens)
    if ngp:
        meta = json.loads((tmp_path / "transforms.json").read_text())
        del meta["camera_model"]
        (tmp_path / "transforms.json").write_text(json.dumps({**meta, "is_fisheye": True}))
    assert max_shift_px(cams.Ks[0], lens, W, H) > 5  # a lens that matters
    scene = load_scene(tmp_path)
    for i in range(len(scene)):
        K = scene.cameras.Ks[i]
        assert scene.cameras.size(i) == (W, H)
        torch.testing.assert_close(scene.cameras.cam_from_world[i], cams.cam_from_world[i])
        truth = torch.from_numpy(_render(cams.cam_from_world[i], K, None)).float() / 255
        read = scene.images[i].float() / 255
        raw = torch.from_numpy(np.array(Image.open(tmp_path / "images" / f"{i}.png"))).float() / 255
        assert float(psnr(read, truth)) > 31.0, float(psnr(read, truth))  # measured 35.0-36.7
        assert float(psnr(raw, truth)) < 26.0  # 23.1-24.6: the lens was removed


def test_the_pinhole_sees_only_what_the_photo_holds():
    K = torch.tensor([[120.0, 0, 80], [0, 120.0, 60], [0, 0, 1]])
    for lens in (OPENCV, Lens("OPENCV", (0.2, 0.0, 0.0, 0.0), (0.0, 0.0)), FISHEYE):
        K_new = pinhole_for(K, lens, W, H).double()
        border = torch.tensor([[0.5, 0.5], [W - 0.5, 0.5], [0.5, H - 0.5], [W - 0.5, H - 0.5],
                               [W / 2, 0.5], [0.5, H / 2]], dtype=torch.float64)
        xy = (border - K_new[:2, 2]) / K_new.diagonal()[:2]
        src = distort(xy, lens) * K.double().diagonal()[:2] + K.double()[:2, 2]
        assert ((src >= -1e-3) & (src <= torch.tensor([W, H]) + 1e-3)).all(), lens
        assert float(((src[:, 0] < 1) | (src[:, 0] > W - 1) | (src[:, 1] < 1)
                      | (src[:, 1] > H - 1)).float().sum()) >= 1  # and reaches the edge


def test_lens_keys_are_checked(tmp_path):
    assert lens_of({"k1": 0.0, "p1": 0}) is None
    assert lens_of({"k1": -0.1}).model == "OPENCV"
    with pytest.raises(ValueError, match="camera_model 'EQUIRECTANGULAR'"):
        lens_of({"camera_model": "EQUIRECTANGULAR", "k1": 0.1})
    with pytest.raises(ValueError, match="camera_model 'EQUIRECTANGULAR'"):
        lens_of({"camera_model": "EQUIRECTANGULAR"})  # a panorama is no pinhole either
    with pytest.raises(ValueError, match="'PINHOLE' has no distortion coefficients"):
        lens_of({"camera_model": "PINHOLE", "k1": 0.1})
    assert lens_of({"camera_model": "PINHOLE"}) is None
    assert lens_of({"camera_model": "OPENCV_FISHEYE"}) == EQUIDISTANT
    _capture(tmp_path, OPENCV, n=1)
    meta = json.loads((tmp_path / "transforms.json").read_text())
    meta["k2"] = "strong"
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(VoxsplatError, match="transforms.json: frame 0.*'k2' must be a number"):
        load_scene(tmp_path)
