# GPU machine, one call (carry .devdata/mesh: gsplat's wheels without spconv, which the dense
# preset does not use, and lego 400, 49 MiB together): lego dense trained, meshed with and
# without the flying-pixel filter (lego_mesh.json). Staged from the project root with
#   bash ../shared/device/stage.sh && mkdir -p .devdata/mesh/wheels .devdata/mesh/data
#   cp .device-wheels/*.whl .device-wheels/gsplat_ext_*.tar.xz .devdata/mesh/wheels/
#   grep -v "spconv_cu126\|cumm_cu126" .device-wheels/setup.sh > .devdata/mesh/wheels/setup.sh
#   cp -r ../shared/data/nerf_synthetic_lego_400 .devdata/mesh/data/
# Its setup marks /tmp/site ready without spconv: on the same machine, a later
# .device-wheels/setup.sh then needs `tar xJf .device-wheels/{spconv,cumm}_cu126-*.tar.xz -C /tmp/site`.
source .devdata/mesh/wheels/setup.sh && source bench/device_setup.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -m voxsplat.scripts.bench lego_mesh --device cuda --data .devdata/mesh/data --out $OUT 2>&1 \
  | grep -v Warn | tail -6
