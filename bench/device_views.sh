# GPU machine: presets against the number of training views (bench/views_threshold.py).
# JOBS lists "CASE N PRESET MODEL" runs (;-separated), P of them at a time sharing the GPU, each
# with OMP_NUM_THREADS=4 so that P processes do not oversubscribe the CPU (the fortieth
# session's six runs at once, with torch's default of a thread per core each, finished two).
# Here first: bash ../shared/device/stage.sh, then the data: fern:
#   mkdir -p .devdata/fa && cp -r ../shared/data/llff_fern .devdata/fa/
# lego (its images for those N, the rest blanked):
#   python3 bench/views_threshold.py --stage .devdata/lv 12 24
# then run(command="JOBS='fern 17 sparse voxel; ...' bash bench/device_views.sh",
#          carry=[".device-wheels", ".devdata/fa"])   # lego: ".devdata/lv"; both do not fit
source .device-wheels/setup.sh && source bench/device_setup.sh
data() { case $1 in fern) echo .devdata/fa ;; lego) echo .devdata/lv ;; esac; }
one() {
  set -- $1
  local tag=views_$1_$2_$3_$4
  OMP_NUM_THREADS=4 timeout ${RUN_TIMEOUT:-500} python3 bench/views_threshold.py $2 $3 $4 \
    $OUT/$tag.json --case $1 --data $(data $1) > $OUT/$tag.log 2>&1
  echo "$tag rc=$? $(grep '^{' $OUT/$tag.log | tail -1)"
}
export -f one data
echo "$JOBS" | tr ';' '\n' | sed 's/^ *//; /^$/d' | xargs -P ${P:-3} -I{} bash -c 'one "{}"'
