# GPU machine with 2+ GPUs (kind nvidia-h200-x2): data-parallel training through torchrun
# (recon/distributed.py) against one GPU, on the kitchen capture (24 training views, `dense`
# preset, staged by bench/stage_colmap.py as for device_sky.sh):
#   run(command="bash bench/device_multigpu.sh", carry=[".device-wheels", ".devdata/kitchen"],
#       kind="nvidia-h200-x2")
# First the multi-GPU test (NCCL), then: one GPU with STEPS steps (default 3000, so that the
# call fits in 600 s; the preset's schedule rescaled); W GPUs with the same steps (W x the
# views per step); W GPUs with STEPS / W steps (the same views in all, the run W times
# shorter). Results: $OUT/multigpu_*.json (metrics.json of each run).
source .device-wheels/setup.sh && source bench/device_setup.sh
nvidia-smi --query-gpu=name --format=csv,noheader
W=${W:-$(nvidia-smi -L | wc -l)}
timeout 200 python3 -m pytest -m gpu -q -p no:cacheprovider tests/recon/test_distributed_gpu.py \
  > $OUT/multigpu_tests.txt 2>&1; tail -1 $OUT/multigpu_tests.txt
R="python3 -m voxsplat.scripts.cli reconstruct .devdata/kitchen --device cuda --quiet --preset dense"
T="python3 -m torch.distributed.run --standalone --nproc_per_node $W -m voxsplat.scripts.cli reconstruct .devdata/kitchen --device cuda --quiet --preset dense"
STEPS=${STEPS:-3000}
timeout ${RUN_TIMEOUT:-150} $R --steps $STEPS --out /tmp/mg_1 > /tmp/mg_1.log 2>&1; tail -2 /tmp/mg_1.log
timeout ${RUN_TIMEOUT:-150} $T --steps $STEPS --out /tmp/mg_w > /tmp/mg_w.log 2>&1; tail -2 /tmp/mg_w.log
timeout ${RUN_TIMEOUT:-150} $T --steps $((STEPS / W)) --out /tmp/mg_ws > /tmp/mg_ws.log 2>&1; tail -2 /tmp/mg_ws.log
for r in 1 w ws; do cp /tmp/mg_$r/metrics.json $OUT/multigpu_$r.json 2>/dev/null; done
