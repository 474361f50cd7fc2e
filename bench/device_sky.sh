# GPU machine: the learned sky (sky.mode on / off) on real captures without masks, each case's
# two runs side by side on the one GPU: kitchen (25 views, dense preset) and sacre coeur (10
# internet photos, auto preset), both posed here first (bench/stage_colmap.py, see
# device_kitchen.sh). run(command="bash bench/device_sky.sh", carry=[".devdata/kitchen",
# ".devdata/sacre"]) on a machine still warm from a call that carried .device-wheels.
source .device-wheels/setup.sh && source bench/device_setup.sh
for c in ${CASES:-kitchen sacre}; do for m in on off; do
  ( timeout ${RUN_TIMEOUT:-500} python3 -m voxsplat.scripts.cli reconstruct .devdata/$c --out /tmp/sky_${c}_$m \
      --device cuda --quiet --set sky.mode=$m > /tmp/sky_${c}_$m.log 2>&1;
    cp /tmp/sky_${c}_$m/metrics.json $OUT/sky_${c}_$m.json; tail -2 /tmp/sky_${c}_$m.log ) &
done; done
wait
