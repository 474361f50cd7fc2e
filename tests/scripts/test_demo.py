"""`voxsplat demo` end to end on CPU: outputs exist and the held-out PSNR clears the bar."""

import json

import imageio.v3 as iio
import pytest


@pytest.mark.slow
def test_demo_end_to_end(demo_workspace):
    out = demo_workspace
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["psnr"] >= 24.0, metrics["psnr"]
    assert metrics["n_test_views"] == 10 and metrics["peak_gpu_mem_mb"] is None
    for key in ("ssim", "n_gaussians", "train_seconds", "device"):
        assert key in metrics
    assert (out / "splats.splat").stat().st_size == 32 * metrics["n_gaussians"]
    frames = iio.imread(out / "video.mp4")
    assert frames.shape[0] >= 60 and frames.std() > 10
    assert (out / "ground_truth" / "mesh.ply").is_file()
    assert (out / "mesh.ply").is_file()
    record = json.loads((out / "scene.json").read_text())
    assert {im["split"] for im in record["images"]} == {"train", "test"}
