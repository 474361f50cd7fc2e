# GPU machine, call A (carry .device-wheels): GPU tests + the synthetic benchmark.
set -x
source .device-wheels/setup.sh && source bench/device_setup.sh
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import voxsplat.render, gsplat; print('gsplat', gsplat.__version__)"
python3 -m pytest -m gpu -q tests/render/test_rasterize_gpu.py 2>&1 | tail -15
python3 -m voxsplat.scripts.bench synthetic_fast --device cuda --out $OUT --eval-at 500,1000,1500 2>&1 | tail -8
