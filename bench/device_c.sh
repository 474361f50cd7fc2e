# GPU machine, call C (carry .devdata): GPU tests, lego_dense with the dense preset, and the
# peer gsplat recipe at 7k steps, side by side on the same machine.
source .devdata/wheels/setup.sh && source bench/device_setup.sh
python3 -m pytest -m gpu -v tests/render/test_rasterize_gpu.py 2>&1 | tail -6 | tee $OUT/gpu_tests.txt
python3 -m voxsplat.scripts.bench lego_dense --device cuda --data .devdata --out $OUT --eval-at 5000 2>&1 | grep -v Warn | tail -3
python3 .devdata/gsplat_recipe.py .devdata/nerf_synthetic_lego_400 $OUT/peer_gsplat_lego_dense.json --steps 7000 2>&1 | tail -2
