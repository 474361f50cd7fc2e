# GPU machine, call E (carry .device-wheels + .devdata/fv): few-view voxel benchmarks, each
# with its --model gaussians baseline.
source .device-wheels/setup.sh && source bench/device_setup.sh
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
B="python3 -m voxsplat.scripts.bench --device cuda --data .devdata/fv --out $OUT"
for c in ${CASES:-lego_8view fern_3view dtu24_3view}; do
  echo "== $c"; timeout ${CASE_TIMEOUT:-200} $B $c $EXTRA 2>&1 | grep -v -i warn | tail -3
done
