#!/usr/bin/env bash
# Train folds on one GPU with the JAX backend, WORKERS processes at a time, and pack the new
# records into $OUT/results.tgz every PACK_EVERY seconds and at the end (only what finished
# comes back).
#
#   WORKERS=12 MINUTES=7 BUSI_GIT_COMMIT=<commit> bash tools/gpu_train.sh \
#       <busi_lib.experiments.crossval arguments> [--then <arguments of a second group> ...]
#
# Each worker runs the groups in turn; the workers share the folds through lock files
# (busi_lib.experiments.crossval --locks), so each fold is trained once, and no fold is started after
# MINUTES minutes (pass a MINUTES that leaves the last folds time to finish before the
# command's own time limit).
# WARM=<seconds>: start worker 1 alone and the others once it has finished its first epoch (or
# after that many seconds), so that they find its compiled network in the persistent XLA cache
# instead of all compiling at once (the large Keras backbones' first epoch did not end within
# 9 minutes with 16 workers compiling together on an H200).
# Expects: .whl/ with the wheels of keras, namex and optree for the machine's Python (the GPU
# image has JAX but not Keras), and the data as a folder of bundles given with --data-dir
# (busi_lib.data.busi.save_bundles).
set -u
: "${OUT:=/tmp/out}"; mkdir -p "$OUT"
N=${WORKERS:-8}
PY=${PYTHON:-python3}
DEADLINE=$(awk -v now="$(date +%s)" -v m="${MINUTES:-7}" 'BEGIN {printf "%d", now + m * 60}')
if [ -z "${SKIP_WHEELS:-}" ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
        .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false OMP_NUM_THREADS=1
# identical networks (the folds of one experiment) compile once: persistent XLA cache
export JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
       JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0
nvidia-smi -L 2>/dev/null
$PY -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" || exit 1
mkdir -p logs

# split the arguments into groups at each --then
groups=(); cur=""
for a in "$@"; do
    if [ "$a" = "--then" ]; then groups+=("$cur"); cur=""; else cur="$cur $(printf '%q' "$a")"; fi
done
groups+=("$cur")

pack() {
    tar czf "$OUT/.results.tgz" --exclude='*/checkpoints' --exclude='*/models' \
        --exclude="*/.write_probe*" ${PACK:-results/cpu} logs 2>/dev/null \
        && mv "$OUT/.results.tgz" "$OUT/results.tgz"
}
worker() {
    for g in "${groups[@]}"; do
        left=$(( DEADLINE - $(date +%s) ))
        [ "$left" -le 0 ] && break
        eval "$PY -m busi_lib.experiments.crossval $g --locks /tmp/fold_locks --hours $(awk -v s="$left" "BEGIN {print s / 3600}")"
    done
}
for i in $(seq 1 "$N"); do
    worker > "logs/gpu_worker$i.log" 2>&1 &
    sleep 2
    if [ "$i" = 1 ] && [ -n "${WARM:-}" ]; then
        t0=$(date +%s)
        until grep -q "epoch 1/" logs/gpu_worker1.log 2>/dev/null || [ -z "$(jobs -rp)" ] \
              || [ $(( $(date +%s) - t0 )) -ge "$WARM" ]; do sleep 2; done
        echo "$(date +%T) worker 1 warm after $(( $(date +%s) - t0 )) s; starting the others"
    fi
done
while [ -n "$(jobs -rp)" ]; do
    sleep "${PACK_EVERY:-30}"
    pack
    echo "$(date +%T) locked: $(ls /tmp/fold_locks 2>/dev/null | wc -l) done: $(grep -h ': done in' logs/gpu_worker*.log | wc -l)"
done
wait
pack
grep -h ": done in" logs/gpu_worker*.log | sort | tail -n 80
