"""Data-parallel training on two GPUs through NCCL (`torchrun`), on the GPU machine with two
GPUs (`nvidia-h200-x2`; bench/device_multigpu.sh): the gloo tests in test_distributed.py on
CUDA, NCCL and gsplat."""

import json
import os
import subprocess
import sys

import pytest
import torch

from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.data.writers import write_blender_dataset

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs (nvidia-h200-x2)")
@pytest.mark.parametrize("model", ["gaussians", "voxel"])
def test_torchrun_on_two_gpus_trains_one_workspace(tmp_path, model):
    scene = make_synthetic_scene(SyntheticConfig(width=128, height=96, n_train=8, n_test=2)).scene
    data = write_blender_dataset(scene, tmp_path / "input")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "voxsplat.scripts.cli", "reconstruct", str(data), "--out", str(tmp_path / "ws"),
           "--device", "cuda", "--preset", "fast", "--model", model, "--steps", "600", "--quiet"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=280, env=dict(os.environ))
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = json.loads((tmp_path / "ws" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and run.stdout.count("workspace:") == 1
    assert metrics["psnr"] > 24.0, metrics["psnr"]
