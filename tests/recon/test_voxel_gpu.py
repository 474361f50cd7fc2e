"""The voxel model on CUDA (spconv's GPU kernels) against the same model on the CPU."""

import copy

import pytest
import torch

pytest.importorskip("spconv")
pytestmark = pytest.mark.gpu

from voxsplat.recon.config import VoxelConfig  # noqa: E402
from voxsplat.recon.representation import SparseVoxelGrid  # noqa: E402


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_voxel_gaussians_cuda_matches_cpu_forward_and_backward():
    from voxsplat.recon.representation.voxel_gaussians import VoxelGaussians
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(20000, 3, generator=g)
    grid = SparseVoxelGrid.from_points(pts, 0.05)
    cfg = VoxelConfig(gaussians_per_voxel=4)
    cpu = VoxelGaussians(grid, torch.rand(len(grid), 3, generator=g), cfg, sh_degree=1)
    with torch.no_grad():  # non-trivial weights everywhere (some start at zero)
        for p in cpu.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    gpu = copy.deepcopy(cpu).cuda()
    from spconv.core import ConvAlgo  # on a CUDA machine layers default to implicit GEMM,
    for m in cpu.modules():           # which has no CPU kernel; same weights (KRSC) either way
        if hasattr(m, "algo"):
            m.algo = ConvAlgo.Native
    out_c, out_g = cpu(), gpu()
    w = {k: torch.randn(v.shape, generator=g) for k, v in out_c.items()}
    sum(((out_c[k] * w[k]).sum() for k in out_c)).backward()
    sum(((out_g[k] * w[k].cuda()).sum() for k in out_g)).backward()
    for k in out_c:
        torch.testing.assert_close(out_g[k].cpu(), out_c[k].detach(), rtol=1e-3, atol=1e-3)
    for (name, pc), (_, pg) in zip(cpu.named_parameters(), gpu.named_parameters()):
        torch.testing.assert_close(pg.grad.cpu(), pc.grad, rtol=1e-2, atol=1e-3, msg=name)
