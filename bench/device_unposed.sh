# GPU machine: a handful of unposed photos end to end (bench/unposed_fewview.py). Here first:
#   bash ../shared/device/stage.sh && python3 bench/unposed_fewview.py --stage .devdata/ud [SET]
# then run(command="JOBS='sfm voxel; given voxel; ...' bash bench/device_unposed.sh",
#          carry=[".device-wheels", ".devdata/ud"])
# JOBS lists "POSES MODEL [--set section.field=value ...]" runs (;-separated), P at a time
# sharing the GPU, 4 CPU threads each; SET (default dtu24_6) picks the staged set.
source .device-wheels/setup.sh && source bench/device_setup.sh
one() {
  set -- $1
  local tag=unposed_${SET:-dtu24_6}_$1_$2
  [ $# -gt 2 ] && tag=${tag}_$(echo "${*:3}" | sed 's/--set //g' | tr -cs 'a-zA-Z0-9' '_' | sed 's/_$//')
  OMP_NUM_THREADS=4 timeout ${RUN_TIMEOUT:-500} python3 bench/unposed_fewview.py \
    .devdata/ud/unposed_${SET:-dtu24_6}.pt $1 $2 $OUT/$tag.json "${@:3}" > /tmp/$tag.log 2>&1
  local rc=$?
  echo "$tag rc=$rc $(grep '^{' /tmp/$tag.log | tail -1)"
  [ $rc -eq 0 ] || tail -20 /tmp/$tag.log  # (a call brings back few files: JSONs only)
}
export -f one
export SET=${SET:-dtu24_6}
echo "$JOBS" | tr ';' '\n' | sed 's/^ *//; /^$/d' | xargs -P ${P:-3} -I{} bash -c 'one "{}"'
