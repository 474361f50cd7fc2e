# GPU machine: the GPU tests, the export tests, and what the flying-pixel filter costs the
# geometry exports' renders now that colour and the depth's moments share one render
# (bench/export_passes.py): on lego's 8 views (voxel model) and on the demo. JSON, logs to $OUT.
# run(command="bash bench/device_export_passes.sh", carry=[".device-wheels", ".devdata/l8"])
source .device-wheels/setup.sh && source bench/device_setup.sh
DEVDATA=${DEVDATA:-.devdata/l8}
rm -rf /tmp/ws8 /tmp/demo
{ timeout 200 python3 -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tail -6
  timeout 150 python3 -m pytest -q -p no:cacheprovider tests/recon/test_rgbd.py tests/recon/test_mesh.py \
    tests/recon/test_points.py tests/recon/test_export.py tests/render/test_rasterize.py 2>&1 | tail -4
} > $OUT/gpu_tests.txt 2>&1
cat $OUT/gpu_tests.txt
set -x
python3 bench/stage_lego8.py "$DEVDATA" /tmp/lego8
time voxsplat reconstruct /tmp/lego8 --out /tmp/ws8 --device cuda --quiet
python3 bench/export_passes.py /tmp/ws8 --device cuda --out $OUT/export_passes_lego8.json
time voxsplat export /tmp/ws8 --format depth --out /tmp/ws8/rgbd --device cuda --quiet
time voxsplat export /tmp/ws8 --format depth --out /tmp/ws8/rgbd_all --device cuda --quiet --keep-blended
time voxsplat export /tmp/ws8 --format mesh --out /tmp/ws8/mesh.ply --device cuda --quiet
time timeout 200 voxsplat demo --out /tmp/demo --device cuda --quiet
python3 bench/export_passes.py /tmp/demo --device cuda --out $OUT/export_passes_demo.json
