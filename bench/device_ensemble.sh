# GPU machine: bench/diag_ensemble.py over the few-view cases, runs sharing the GPU (PAR at a
# time), then every pair's ensemble PSNR. $OUT/ensemble_*.json, logs in $OUT/ens_logs.tgz.
# run(command="bash bench/device_ensemble.sh", carry=[".device-wheels", ".devdata/fv"])
source .device-wheels/setup.sh && source bench/device_setup.sh
mkdir -p /tmp/ens
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
grep -v '^#' ${ENS:-bench/ensemble_call.txt} | grep . | timeout ${ENS_TIMEOUT:-500} xargs -P ${PAR:-8} -L 1 bash -c \
  'timeout ${RUN_TIMEOUT:-495} python3 bench/diag_ensemble.py train "$@" /tmp/ens > /tmp/ens/$(echo "$@" | tr " =." "___").log 2>&1; echo "done $@"' _
for c in $(grep -v '^#' ${ENS:-bench/ensemble_call.txt} | awk '{print $1}' | sort -u); do
  python3 bench/diag_ensemble.py combine $c /tmp/ens && cp /tmp/ens/ensemble_$c.json $OUT/
done
tar czf $OUT/ens_logs.tgz -C /tmp/ens $(cd /tmp/ens && ls *.log)
grep -h '"tag"' /tmp/ens/*.log
