"""Export -> read -> render gives the same image; .splat is 32 bytes per Gaussian."""

import torch
from plyfile import PlyData

from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.recon.config import InitConfig
from voxsplat.recon.export import read_ply, write_ply, write_splat
from voxsplat.recon.gaussians import init_splats, render_splats


def test_ply_export_read_render_is_identical(tmp_path):
    scene = make_synthetic_scene(SyntheticConfig(width=64, height=48, n_train=4, n_test=1,
                                                 n_points=1500, supersample=1)).scene
    splats = {k: v.detach() for k, v in init_splats(scene, InitConfig(), 3, 0).items()}
    splats["shN"] = torch.randn_like(splats["shN"]) * 0.1
    write_ply(tmp_path / "s.ply", splats)
    back = read_ply(tmp_path / "s.ply")
    cam = scene.cameras[0]
    bg = torch.ones(3)
    a = render_splats(splats, cam, 3, bg, "torch").colors
    b = render_splats(back, cam, 3, bg, "torch").colors
    assert a.std() > 0.05  # a real image, not a blank one
    assert torch.equal(a, b)
    names = [p.name for p in PlyData.read(str(tmp_path / "s.ply"))["vertex"].properties]
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[-8:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert len(names) == 9 + 45 + 8
    write_splat(tmp_path / "s.splat", splats)
    assert (tmp_path / "s.splat").stat().st_size == 32 * splats["means"].shape[0]
