# GPU machine, exploration call: few-view variants run side by side on the one GPU (they share
# it, so train_seconds are inflated; PSNRs are what this is for). Each line of $SWEEP
# (default bench/sweep.txt) is "CASE TAG [bench.py options...]"; PAR runs at a time (default 2: two full-resolution fern runs side by side took 120 s each;
# twelve side by side did not finish in 470 s, only the quarter-resolution ones did).
# $OUT/sweep.json (summary) and $OUT/sweep_runs.tgz (every JSON and log) come back.
# run(command="bash bench/device_sweep.sh", carry=[".device-wheels", ".devdata/fv"])
source .device-wheels/setup.sh && source bench/device_setup.sh
mkdir -p /tmp/sweep
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
grep -v '^#' ${SWEEP:-bench/sweep.txt} | grep . | timeout ${SWEEP_TIMEOUT:-540} xargs -P ${PAR:-2} -L 1 bash -c \
  'c=$0; t=$1; shift; timeout ${RUN_TIMEOUT:-420} python3 -m voxsplat.scripts.bench --device cuda \
   --data ${DATA:-.devdata/fv} --out /tmp/sweep --tag _$t "$c" "$@" > /tmp/sweep/${c}_${t}.log 2>&1; echo "done $c $t"'
pkill -f voxsplat.scripts.bench; sleep 1  # runs cut off by SWEEP_TIMEOUT leave no JSON
python3 - <<'PY'
import json, glob, os
rows = []
for f in sorted(glob.glob("/tmp/sweep/*.json")):
    d = json.load(open(f))
    rows.append({k: d.get(k) for k in ("case", "psnr", "baseline_psnr", "train_seconds", "n_voxels",
                                       "n_gaussians", "mvs_points", "steps", "gpu", "torch", "gsplat")}
                | {"file": os.path.basename(f), "baseline_seconds": (d.get("baseline") or {}).get("train_seconds"),
                   "baseline_n_gaussians": (d.get("baseline") or {}).get("n_gaussians")})
    print(rows[-1]["file"], rows[-1]["psnr"], rows[-1]["baseline_psnr"], rows[-1]["n_voxels"], rows[-1]["train_seconds"])
json.dump(rows, open(os.environ["OUT"] + "/sweep.json", "w"), indent=1)
PY
tar czf $OUT/sweep_runs.tgz -C /tmp/sweep .  # every run's JSON and log
tail -n 3 /tmp/sweep/*.log | grep -i -B2 "error\|Traceback" | head -20
