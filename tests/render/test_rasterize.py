"""The PyTorch rasterizer against a brute-force dense renderer written here from gsplat's rules.

The dense renderer evaluates every Gaussian at every pixel (no tiles, boxes or culling beyond
the near/far planes), composites front to back by depth with gsplat's alpha rules
(min(0.999, o exp(-sigma)), skip alpha < 1/255, stop before T <= 1e-4) and lets autograd
differentiate it, so it checks the tiled forward pass and the hand-written backward pass.

Tolerances (float32 on both sides, same formulas, different summation orders):
images and alphas max |diff| <= 2e-5; depths max |diff| <= 1e-4 where alpha > 0.01;
gradients ||g - g_ref|| / ||g_ref|| <= 1e-4 per parameter tensor.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from voxsplat.data.errors import VoxsplatError
from voxsplat.render import _torch_rasterizer
from voxsplat.render.rasterize import rasterize
from voxsplat.render.sh import RGB2SH, SH2RGB, SH_C0, eval_sh

IMG_ATOL = 2e-5
DEPTH_ATOL = 1e-4
GRAD_RTOL = 1e-4


# ---------------------------------------------------------------- dense brute-force reference

def _dense_project(means, quats, scales, cam_from_world, Ks, width, height, eps2d):
    """[C,N,2] means2d, [C,N,2,2] inverse 2D covariances, [C,N] depths (gsplat's EWA)."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    rot = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                       2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                       2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
                      -1).reshape(-1, 3, 3)
    cov = rot @ torch.diag_embed(scales ** 2) @ rot.transpose(1, 2)
    r_cw, t_cw = cam_from_world[:, None, :3, :3], cam_from_world[:, None, :3, 3]
    p = (r_cw @ means[None, :, :, None])[..., 0] + t_cw  # [C,N,3]
    cov_c = r_cw @ cov[None] @ r_cw.transpose(-1, -2)
    fx, fy = Ks[:, None, 0, 0], Ks[:, None, 1, 1]
    cx, cy = Ks[:, None, 0, 2], Ks[:, None, 1, 2]
    u, v = p[..., 0] / p[..., 2], p[..., 1] / p[..., 2]
    mx = 0.3 * 0.5 * width / fx
    my = 0.3 * 0.5 * height / fy
    u_c = torch.minimum(torch.maximum(u, -cx / fx - mx), (width - cx) / fx + mx)
    v_c = torch.minimum(torch.maximum(v, -cy / fy - my), (height - cy) / fy + my)
    zero = torch.zeros_like(u)
    jac = torch.stack([fx / p[..., 2], zero, -fx * u_c / p[..., 2],
                       zero, fy / p[..., 2], -fy * v_c / p[..., 2]], -1).reshape(*u.shape, 2, 3)
    cov2d = jac @ cov_c @ jac.transpose(-1, -2) + eps2d * torch.eye(2)
    means2d = torch.stack([fx * u + cx, fy * v + cy], -1)
    return means2d, torch.linalg.inv(cov2d), p[..., 2]


def _dense_render(means, quats, scales, opacities, colors, cam_from_world, Ks, width, height,
                  sh_degree=None, near=0.01, far=1e10, eps2d=0.3):
    """Every Gaussian x every pixel. Returns ([C,H,W,3] rgb, [C,H,W,1] alpha, [C,H,W,1] ED,
    [C,N,2] means2d with retain_grad)."""
    means2d, conics, depths = _dense_project(means, quats, scales, cam_from_world, Ks,
                                             width, height, eps2d)
    if means2d.requires_grad:
        means2d.retain_grad()
    if sh_degree is None:
        rgb = colors[None].expand(len(Ks), -1, -1)
    else:
        centres = torch.stack([-(m[:3, :3].T @ m[:3, 3]) for m in cam_from_world])
        rgb = _inria_sh(sh_degree, means[None] - centres[:, None], colors[None]) + 0.5
        rgb = rgb.clamp_min(0.0)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    pix = torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5  # [HW,2]
    outs = []
    for c in range(len(Ks)):
        order = torch.argsort(depths[c].detach(), stable=True)
        d = means2d[c][order][None] - pix[:, None]  # [HW,N,2]
        sig = 0.5 * torch.einsum("pni,nij,pnj->pn", d, conics[c][order], d)
        alpha = torch.clamp_max(opacities[order] * torch.exp(-sig), 0.999)
        z = depths[c][order]
        ok = (alpha >= 1 / 255) & (sig >= 0) & (z >= near) & (z <= far)
        alpha = torch.where(ok, alpha, torch.zeros_like(alpha))
        alive = torch.cumprod(1 - alpha.detach().double(), 1) > 1e-4
        alpha = torch.where(alive, alpha, torch.zeros_like(alpha))
        trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], 1), 1)
        wts = alpha * trans  # [HW,N]
        outs.append(torch.cat([wts @ rgb[c][order], wts.sum(1, keepdim=True),
                               wts @ z[:, None]], -1))
    out = torch.stack(outs).reshape(len(Ks), height, width, 5)
    alpha = out[..., 3:4]
    return out[..., :3], alpha, out[..., 4:] / alpha.clamp_min(1e-10), means2d


def _inria_sh(degree, dirs, sh):
    """The original 3DGS (Inria) SH evaluation with its own constants, for eval_sh's test."""
    x, y, z = F.normalize(dirs, dim=-1).unbind(-1)
    c1, c2 = 0.4886025119029199, [1.0925484305920792, -1.0925484305920792, 0.31539156525252005,
                                   -1.0925484305920792, 0.5462742152960396]
    c3 = [-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
          -0.4570457994644658, 1.445305721320277, -0.5900435899266435]
    terms = [torch.full_like(x, 0.28209479177387814)]
    if degree >= 1:
        terms += [-c1 * y, c1 * z, -c1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        terms += [c2[0] * x * y, c2[1] * y * z, c2[2] * (2 * zz - xx - yy), c2[3] * x * z,
                  c2[4] * (xx - yy)]
    if degree >= 3:
        terms += [c3[0] * y * (3 * xx - yy), c3[1] * x * y * z, c3[2] * y * (4 * zz - xx - yy),
                  c3[3] * z * (2 * zz - 3 * xx - 3 * yy), c3[4] * x * (4 * zz - xx - yy),
                  c3[5] * z * (xx - yy), c3[6] * x * (xx - 3 * yy)]
    return sum(t[..., None] * sh[..., k, :] for k, t in enumerate(terms))


# ---------------------------------------------------------------- scenes

def _camera(width, height, f, eye=(0.0, 0.0, 0.0), yaw=0.0):
    """OpenCV cam_from_world [4,4] looking down +z after a yaw about y; K [3,3] centred."""
    c, s = math.cos(yaw), math.sin(yaw)
    rot = torch.tensor([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])
    view = torch.eye(4)
    view[:3, :3] = rot
    view[:3, 3] = -rot @ torch.tensor(eye)
    K = torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
    return view, K


def _scene(n, seed, width=37, height=29, f=30.0, sh_degree=None, n_cams=1):
    """Random Gaussians in front of the camera(s), 1-4 px across, some off-screen."""
    g = torch.Generator().manual_seed(seed)
    z = 2.0 + 3.0 * torch.rand(n, generator=g)
    xy = (torch.rand(n, 2, generator=g) * 2.4 - 1.2) * z[:, None] * torch.tensor(
        [width / 2 / f, height / 2 / f])
    means = torch.cat([xy, z[:, None]], -1)
    scales = (0.6 + 1.5 * torch.rand(n, 3, generator=g)) * z[:, None] / f
    quats = torch.randn(n, 4, generator=g)
    opac = torch.sigmoid(2.5 * torch.randn(n, generator=g))
    if sh_degree is None:
        colors = torch.rand(n, 3, generator=g)
    else:
        colors = 0.4 * torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g)
    cams = [_camera(width, height, f, eye=(0.3 * k, -0.1 * k, -0.2 * k), yaw=0.08 * k)
            for k in range(n_cams)]
    views = torch.stack([v for v, _ in cams])
    Ks = torch.stack([k for _, k in cams])
    return [means, quats, scales, opac, colors], views, Ks, width, height


def _loss_weights(n_cams, height, width, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_cams, height, width, 5, generator=g)


def _loss(rgb, alpha, depth, wts):
    """Random linear functional of all outputs (depth weighted by alpha: it is ED)."""
    return ((rgb * wts[..., :3]).sum() + (alpha * wts[..., 3:4]).sum()
            + 0.1 * (depth * alpha.detach() * wts[..., 4:]).sum())


def _rel(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


# ---------------------------------------------------------------- tests

def test_eval_sh_matches_inria_formulas():
    g = torch.Generator().manual_seed(0)
    dirs = torch.randn(500, 3, generator=g) * 3.0  # not normalized: eval_sh normalizes
    coeffs = torch.randn(500, 16, 3, generator=g)
    for degree in range(4):
        got = eval_sh(degree, dirs, coeffs)
        assert torch.allclose(got, _inria_sh(degree, dirs, coeffs), atol=1e-5), degree


def test_eval_sh_axis_signs_and_rgb_helpers():
    coeffs = torch.zeros(3, 4, 3)
    coeffs[:, 1:, 0] = 1.0  # only the degree-1 bases, red channel
    got = eval_sh(1, torch.eye(3), coeffs)[:, 0]  # +x, +y, +z
    assert torch.allclose(got, torch.full((3,), 0.4886025119029199) * torch.tensor([-1, -1, 1]))
    rgb = torch.rand(10, 3)
    assert torch.allclose(SH2RGB(RGB2SH(rgb)), rgb, atol=1e-6)
    assert SH_C0 == 0.28209479177387814
    assert torch.allclose(eval_sh(0, torch.randn(10, 3), RGB2SH(rgb)[:, None]) + 0.5, rgb,
                          atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_matches_dense(seed):
    params, views, Ks, width, height = _scene(250, seed)
    with torch.no_grad():
        out = rasterize(*params, views, Ks, width, height, backend="torch")
        rgb, alpha, depth, _ = _dense_render(*params, views, Ks, width, height)
    assert alpha.max() > 0.9  # the scene covers pixels
    assert (out.colors - rgb).abs().max() <= IMG_ATOL
    assert (out.alphas - alpha).abs().max() <= IMG_ATOL
    seen = alpha > 0.01
    assert (out.depths - depth)[seen].abs().max() <= DEPTH_ATOL
    assert (out.depths[alpha == 0] == 0).all()


@pytest.mark.parametrize("sh_degree", [None, 3])
def test_gradients_match_dense(sh_degree):
    params, views, Ks, width, height = _scene(200, 5, sh_degree=sh_degree)
    wts = _loss_weights(1, height, width, 7)
    params = [p.requires_grad_() for p in params]
    out = rasterize(*params, views, Ks, width, height, sh_degree=sh_degree, backend="torch")
    out.means2d.retain_grad()
    _loss(out.colors, out.alphas, out.depths, wts).backward()
    got = [p.grad.clone() for p in params] + [out.means2d.grad]
    for p in params:
        p.grad = None
    rgb, alpha, depth, means2d = _dense_render(*params, views, Ks, width, height,
                                               sh_degree=sh_degree)
    _loss(rgb, alpha, depth, wts).backward()
    want = [p.grad for p in params] + [means2d.grad * (out.radii > 0)[..., None]]
    names = ["means", "quats", "scales", "opacities", "colors", "means2d"]
    for name, a, b in zip(names, got, want):
        assert b.abs().max() > 0, name
        assert _rel(a, b) <= GRAD_RTOL, (name, _rel(a, b))


def test_float64_gradcheck():
    params, views, Ks, width, height = _scene(6, 8, width=14, height=11, f=12.0)
    params = [p.double().requires_grad_() for p in params]
    views, Ks = views.double(), Ks.double()

    def render(*ps):
        out = rasterize(*ps, views, Ks, width, height, backend="torch")
        return out.colors, out.alphas, out.depths * out.alphas

    assert render(*params)[1].max() > 0.5
    assert torch.autograd.gradcheck(render, params, eps=1e-6, atol=1e-5, rtol=1e-4,
                                    fast_mode=True)


def test_two_cameras_match_dense_and_single_renders():
    params, views, Ks, width, height = _scene(200, 3, n_cams=2)
    wts = _loss_weights(2, height, width, 1)
    params = [p.requires_grad_() for p in params]
    out = rasterize(*params, views, Ks, width, height, backend="torch")
    _loss(out.colors, out.alphas, out.depths, wts).backward()
    got = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    rgb, alpha, depth, _ = _dense_render(*params, views, Ks, width, height)
    _loss(rgb, alpha, depth, wts).backward()
    assert (out.colors - rgb).abs().max() <= IMG_ATOL
    assert not torch.allclose(out.colors[0], out.colors[1])
    for a, p in zip(got, params):
        assert _rel(a, p.grad) <= GRAD_RTOL
    with torch.no_grad():
        single = rasterize(*params, views[1:], Ks[1:], width, height, backend="torch")
    assert torch.allclose(single.colors[0], out.colors[1].detach(), atol=1e-6)
    assert torch.equal(single.radii[0], out.radii[1])


@pytest.mark.parametrize("o", [0.8, 1.0])
def test_single_gaussian_at_centre(o):
    width, height, f, z, s = 33, 25, 40.0, 4.0, 0.15
    view, K = _camera(width, height, f)
    params = [torch.tensor([[0.0, 0.0, z]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
              torch.full((1, 3), s), torch.tensor([o]), torch.tensor([[0.2, 0.4, 0.6]])]
    params = [p.requires_grad_() for p in params]
    out = rasterize(*params, view[None], K[None], width, height, backend="torch")
    var = (f * s / z) ** 2 + 0.3  # projected variance + eps2d
    peak_alpha = min(o, 0.999)
    assert torch.allclose(out.means2d[0, 0], torch.tensor([16.5, 12.5]))
    assert out.radii[0, 0] == math.ceil(math.sqrt(2 * math.log(255 * o)) * math.sqrt(var))
    peak = torch.nonzero(out.alphas[0, ..., 0] == out.alphas.max())
    assert peak.tolist() == [[12, 16]]  # (row, column) of the pixel centred on the mean
    assert out.alphas[0, 12, 16, 0].item() == pytest.approx(peak_alpha, rel=1e-6)
    assert out.alphas[0, 12, 17, 0].item() == pytest.approx(o * math.exp(-0.5 / var), rel=1e-5)
    assert torch.allclose(out.colors[0, 12, 16], peak_alpha * torch.tensor([0.2, 0.4, 0.6]))
    assert out.depths[0, 12, 16, 0].item() == pytest.approx(z, rel=1e-6)
    assert out.alphas[0, 0, 0, 0] == 0  # the corner is beyond the 1/255 contour
    wts = _loss_weights(1, height, width, 3)
    _loss(out.colors, out.alphas, out.depths, wts).backward()  # clamped centre: no alpha grad
    got = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    _loss(*_dense_render(*params, view[None], K[None], width, height)[:3], wts).backward()
    for a, p in zip(got, params):
        assert _rel(a, p.grad) <= GRAD_RTOL


def test_culling_behind_camera_and_outside_planes():
    width, height = 20, 16
    view, K = _camera(width, height, 20.0)
    means = torch.tensor([[0.0, 0.0, -2.0], [0.0, 0.0, 0.005], [0.0, 0.0, 50.0],
                          [0.0, 0.0, 3.0], [100.0, 0.0, 3.0]])
    n = len(means)
    params = [means, torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), torch.full((n, 3), 0.5),
              torch.full((n,), 0.9), torch.rand(n, 3)]
    out = rasterize(*params, view[None], K[None], width, height, near=0.01, far=10.0,
                    backend="torch")
    assert out.radii[0].tolist()[:3] == [0, 0, 0]  # behind, before near, beyond far
    assert out.radii[0, 3] > 0 and out.radii[0, 4] == 0  # in view; far off-screen
    assert torch.isfinite(out.means2d).all()
    only = rasterize(*[p[3:4] for p in params], view[None], K[None], width, height,
                     near=0.01, far=10.0, backend="torch")
    assert torch.equal(out.colors, only.colors)  # the culled ones leave no trace
    assert torch.equal(out.depths, only.depths)


def test_background_compositing():
    params, views, Ks, width, height = _scene(120, 4, n_cams=2)
    bg = torch.tensor([[0.1, 0.5, 0.9], [1.0, 0.0, 0.2]])
    plain = rasterize(*params, views, Ks, width, height, backend="torch")
    for background in (bg, bg[1]):
        out = rasterize(*params, views, Ks, width, height, background=background,
                        backend="torch")
        want = plain.colors + (1 - plain.alphas) * background.expand(2, 3)[:, None, None, :]
        assert torch.allclose(out.colors, want, atol=1e-6)
        assert torch.equal(out.alphas, plain.alphas)
        assert torch.equal(out.depths, plain.depths)  # depth is not composited with it
    empty = plain.alphas[..., 0] == 0
    assert empty.any()
    assert torch.allclose(out.colors[empty], bg[1].expand(int(empty.sum()), 3))
    with pytest.raises(VoxsplatError, match=r"background must be \[3\] or \[C,3\]"):
        rasterize(*params, views, Ks, width, height, background=torch.zeros(4),
                  backend="torch")


def test_any_number_of_feature_channels_blends_like_rgb():
    """[N,D] features without SH blend channel by channel exactly as RGB does (the depth
    export renders colour and z, z^2, z^3 in one pass): each channel of a 5-channel render,
    its background and its gradients, equal those of 3-channel renders of the same channels."""
    params, views, Ks, width, height = _scene(150, 7, n_cams=2)
    g = torch.Generator().manual_seed(3)
    feats = torch.rand(len(params[0]), 5, generator=g).requires_grad_()
    bg = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    wts = torch.randn(2, height, width, 5, generator=g)
    out = rasterize(*params[:4], feats, views, Ks, width, height, background=bg, backend="torch")
    assert out.colors.shape == (2, height, width, 5)
    (out.colors * wts).sum().backward()
    for cols in ([0, 1, 2], [2, 3, 4]):
        part = feats.detach()[:, cols].requires_grad_()
        three = rasterize(*params[:4], part, views, Ks, width, height, background=bg[cols],
                          backend="torch")
        (three.colors * wts[..., cols]).sum().backward()
        torch.testing.assert_close(out.colors[..., cols], three.colors, atol=1e-6, rtol=0)
        assert torch.equal(out.alphas, three.alphas) and torch.equal(out.depths, three.depths)
        torch.testing.assert_close(feats.grad[:, cols], part.grad, atol=1e-6, rtol=1e-5)
    one = rasterize(*params[:4], feats.detach()[:, 4:], views, Ks, width, height,
                    backend="torch")
    assert one.colors.shape == (2, height, width, 1)
    with pytest.raises(VoxsplatError, match="background"):
        rasterize(*params[:4], feats, views, Ks, width, height, background=bg[:3],
                  backend="torch")


def test_empty_scene():
    width, height = 12, 10
    view, K = _camera(width, height, 10.0)
    views, Ks = torch.stack([view, view]), torch.stack([K, K])
    params = [torch.zeros(0, 3), torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0),
              torch.zeros(0, 3)]
    out = rasterize(*params, views, Ks, width, height, background=torch.tensor([0.2, 0.3, 0.4]),
                    backend="torch")
    assert out.colors.shape == (2, height, width, 3)
    assert torch.allclose(out.colors, torch.tensor([0.2, 0.3, 0.4]).expand(2, height, width, 3))
    assert out.alphas.shape == out.depths.shape == (2, height, width, 1)
    assert (out.alphas == 0).all() and (out.depths == 0).all()
    assert out.means2d.shape == (2, 0, 2) and out.radii.shape == (2, 0)
    assert out.radii.dtype == torch.int32


def test_bands_with_checkpointing_match(monkeypatch):
    params, views, Ks, width, height = _scene(200, 6, width=40, height=41)
    wts = _loss_weights(1, height, width, 2)
    results = []
    for max_pairs in (10**9, 3000):  # one band; then about ten bands of tile rows
        monkeypatch.setattr(_torch_rasterizer, "MAX_PAIRS", max_pairs)
        ps = [p.clone().requires_grad_() for p in params]
        out = rasterize(*ps, views, Ks, width, height, backend="torch")
        out.means2d.retain_grad()
        _loss(out.colors, out.alphas, out.depths, wts).backward()
        results.append((out.colors.detach(), [p.grad for p in ps] + [out.means2d.grad]))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-6)
    for a, b in zip(results[0][1], results[1][1]):
        assert _rel(a, b) <= 1e-5


def test_bad_inputs_raise():
    params, views, Ks, width, height = _scene(10, 0)
    with pytest.raises(VoxsplatError, match="quats"):
        rasterize(params[0], params[1][:, :3], *params[2:], views, Ks, width, height,
                  backend="torch")
    with pytest.raises(VoxsplatError, match="sh_degree"):
        rasterize(*params, views, Ks, width, height, sh_degree=1, backend="torch")
    with pytest.raises(VoxsplatError, match="backend"):
        rasterize(*params, views, Ks, width, height, backend="vulkan")


def test_gsplat_backend_reports_missing_gsplat(monkeypatch):
    from voxsplat.render._gsplat_backend import rasterize_gsplat

    monkeypatch.setitem(sys.modules, "gsplat", None)  # makes `import gsplat` fail
    params, views, Ks, width, height = _scene(10, 0)
    with pytest.raises(VoxsplatError, match="pip install gsplat"):
        rasterize_gsplat(*params, views, Ks, width, height)
    with pytest.raises(VoxsplatError, match="CUDA"):
        rasterize(*params, views, Ks, width, height, backend="gsplat")


def test_import_does_not_load_gsplat():
    code = ("import sys, voxsplat.render.rasterize, voxsplat.render._torch_rasterizer, "
            "voxsplat.render._gsplat_backend; print('gsplat' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
