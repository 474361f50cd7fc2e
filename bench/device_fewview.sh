# GPU machine, few-view call. Here first:
#   bash ../shared/device/stage.sh
#   python bench/stage_devdata.py .devdata/fv lego_8view fern_3view dtu24_3view   # ~14 MiB
# then run(command="bash bench/device_fewview.sh", carry=[".device-wheels", ".devdata/fv"]).
# The voxel GPU test, then each few-view case (voxel run + its --model gaussians baseline),
# one JSON per case in $OUT. CASES, EXTRA (e.g. "--set voxel.n_voxels=5000 --tag _v5k") and
# CASE_TIMEOUT override; GPU_TESTS=0 skips the test. With the unseen-view loss in the preset
# (eleventh session) a case takes 150-180 s with its baseline (voxel 116 / 117 / 90 s on fern /
# lego / DTU); fern and lego took 357 s in one call: run DTU in a second call (CASE_TIMEOUT=285)
# to stay clear of the 600 s a call may run.
source .device-wheels/setup.sh && source bench/device_setup.sh
if [ "${GPU_TESTS:-1}" = 1 ]; then  # GPU_TESTS=0 skips them (short device budget)
  python3 -m pytest -m gpu -q -x --tb=short -p no:cacheprovider tests/recon/test_voxel_gpu.py > $OUT/gpu_tests_voxel.txt 2>&1; tail -1 $OUT/gpu_tests_voxel.txt
fi
B="python3 -m voxsplat.scripts.bench --device cuda --data ${DATA:-.devdata/fv} --out $OUT"
one() {  # $1: seconds before the run is cut off, $2: the case, the rest: bench options (--models)
  local t=$1 c=$2; shift 2
  echo "== $c $*"; timeout $t $B $c "$@" $EXTRA 2>&1 | grep -v -i warn | tail -1 | cut -c1-300
}
if [ "${SPLIT:-0}" = 1 ]; then
  # SPLIT=1 (short device budget): each model as its own run, explicit Gaussians of every case
  # first, so that a call cut short still yields the baselines; files CASE_gaussians.json and
  # CASE_voxel.json, joined by bench/merge_fewview.py (forty-second session: fern 71 / 85 s,
  # DTU 58 / 89 s of training for gaussians / voxel on the H100).
  for m in gaussians voxel; do
    for c in ${CASES:-lego_8view fern_3view dtu24_3view}; do
      one $([ $m = voxel ] && echo ${V_TIMEOUT:-165} || echo ${G_TIMEOUT:-120}) $c --models $m --tag _$m
    done
  done
else
  for c in ${CASES:-lego_8view fern_3view dtu24_3view}; do one ${CASE_TIMEOUT:-240} $c; done
fi
# lego_dense_voxel needs every lego view (~38 MiB): stage it with
#   python bench/stage_devdata.py .devdata/ld lego_dense_voxel
# carry only .devdata/ld in one call (e.g. command "true"), then, while the machine is warm,
# CASES=lego_dense_voxel with DATA=.devdata/ld and carry=[".device-wheels"].
# Seventh session: the two models of lego_dense_voxel ran as separate `--models gaussians` and
# `--models voxel` runs in that call (each alone on the GPU, several voxel variants), joined by
#   python bench/merge_fewview.py VOXEL.json GAUSSIANS.json bench/results/lego_dense_voxel.json
