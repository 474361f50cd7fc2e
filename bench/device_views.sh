# GPU machine: presets against the number of training views (bench/views_threshold.py), the
# six runs sharing the GPU (times inflated; PSNR unaffected). Here first:
#   bash ../shared/device/stage.sh; mkdir -p .devdata/fa && cp -r ../shared/data/llff_fern .devdata/fa/
# then run(command="bash bench/device_views.sh", carry=[".device-wheels", ".devdata/fa"]).
source .device-wheels/setup.sh && source bench/device_setup.sh
for n in ${NS:-9 17}; do
  for pm in "sparse voxel" "sparse gaussians" "dense gaussians"; do
    set -- $pm
    timeout ${RUN_TIMEOUT:-400} python3 bench/views_threshold.py $n $1 $2 $OUT/views_${n}_$1_$2.json > $OUT/views_${n}_$1_$2.log 2>&1 &
  done
done
wait
cat $OUT/views_*.log | grep '^{'
