# GPU machine, one call (carry .devdata/mesh: gsplat's wheels without spconv, which the dense
# preset does not use, and lego 400, 49 MiB together; staged as in bench/results/README.md):
# lego dense trained, meshed with and without the flying-pixel filter (lego_mesh.json).
source .devdata/mesh/wheels/setup.sh && source bench/device_setup.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -m voxsplat.scripts.bench lego_mesh --device cuda --data .devdata/mesh/data --out $OUT 2>&1 \
  | grep -v Warn | tail -6
