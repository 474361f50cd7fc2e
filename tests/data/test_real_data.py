"""The readers on the real shared scenes (read-only; skipped when ../shared/data is absent)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from voxsplat.data.load import load_scene
from voxsplat.data.readers.neus import DTU_TEST_IDS
from voxsplat.data.transforms import normalize, optical_axes_center


def _project(scene, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels [C,2] and depths [C] of world point X [3] in every camera."""
    x_cam = scene.cameras.cam_from_world[:, :3, :3] @ X + scene.cameras.cam_from_world[:, :3, 3]
    uvw = torch.einsum("cij,cj->ci", scene.cameras.Ks, x_cam)
    return uvw[:, :2] / uvw[:, 2:], x_cam[:, 2]


@pytest.fixture(scope="module")
def lego(shared_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shared copy has transforms_val.json but no val/
        return load_scene(shared_data / "nerf_synthetic_lego_400")


def test_lego_splits_sizes_and_intrinsics(lego):
    assert len(lego.splits["train"]) == 100 and len(lego.splits["test"]) == 200
    assert len(lego) == 300 and lego.names[0] == "train/r_0" and lego.names[100] == "test/r_0"
    assert set(lego.cameras.widths.tolist()) == {400}
    assert set(lego.cameras.heights.tolist()) == {400}
    focal = 0.5 * 400 / np.tan(0.5 * 0.6911112070083618)
    torch.testing.assert_close(lego.cameras.Ks[:, 0, 0], torch.full((300,), focal), rtol=1e-5,
                               atol=0)
    assert lego.masks is not None and 0.1 < lego.masks[0].float().mean() < 0.5
    assert lego.images[0][0, 0].tolist() == [255, 255, 255]  # white background in a corner


def test_lego_cameras_look_at_the_origin(lego):
    uv, depth = _project(lego, torch.zeros(3))
    test = list(lego.splits["test"])
    assert (uv[test] - 200.0).abs().max() < 1.0
    assert depth.min() > 3.9 and depth.max() < 4.2  # the ring of radius ~4.03
    torch.testing.assert_close(optical_axes_center(lego.cameras).float(), torch.zeros(3),
                               atol=1e-3, rtol=0)
    assert normalize(lego).cameras.centers.norm(dim=1).max() == pytest.approx(1.0, abs=1e-4)


def test_fern_forward_facing(shared_data):
    fern = load_scene(shared_data / "llff_fern")
    assert len(fern) == 20 and fern.cameras.size(0) == (504, 378)
    assert fern.splits["test"] == (0, 8, 16) and len(fern.splits["train"]) == 17
    assert fern.names[0] == "image000"
    # hwf: focal 3260.5 for 4032 px wide -> 407.6 px at 504 wide
    torch.testing.assert_close(fern.cameras.Ks[:, 0, 0], torch.full((20,), 407.57), atol=0.1,
                               rtol=0)
    axes = fern.cameras.world_from_cam[:, :3, 2]
    assert (axes @ axes[0]).min() > 0.95  # forward-facing: every camera looks the same way
    center = optical_axes_center(fern.cameras).float()
    uv, depth = _project(fern, center)
    assert (depth > 17.0).all() and (depth < 78.0).all()  # inside poses_bounds' near/far
    assert (uv - torch.tensor([252.0, 189.0])).abs().max() < 40.0


def test_dtu_masks_protocol_and_unit_sphere(shared_data):
    dtu = load_scene(shared_data / "dtu_scan24_400x300")
    assert len(dtu) == 49 and dtu.cameras.size(0) == (400, 300)
    assert dtu.splits == {"train": (25, 22, 28), "test": DTU_TEST_IDS}
    assert dtu.masks is not None and len(dtu.masks) == 49
    # K for 1600x1200 (fx ~2892, cx ~823) scaled by 0.25
    assert dtu.cameras.Ks[0, 0, 0].item() == pytest.approx(723.1, abs=0.5)
    assert dtu.cameras.Ks[0, 0, 2].item() == pytest.approx(205.8, abs=0.5)
    distances = dtu.cameras.centers.norm(dim=1)
    assert distances.min() > 2.6 and distances.max() < 3.1
    uv, depth = _project(dtu, torch.zeros(3))
    assert (depth > 0).all()
    inside = [bool(dtu.masks[i][int(uv[i, 1]), int(uv[i, 0])]) for i in range(49)]
    assert all(inside)  # the unit sphere's centre is on the object in every view
    assert abs(torch.linalg.det(dtu.world_from_input[:3, :3]).item()) < 1e-6  # 1 / 231^3
