#!/usr/bin/env bash
# Run tuning trials one by one in the background and commit each record as it lands.
#
#   bash tools/tune_and_commit.sh cpu "s6_zscore s6_zscore_s1 s6_zscore_s2"
#   STOP_AT=$(date -d 15:40 +%s) TRIAL_S=420 bash tools/tune_and_commit.sh ...
#       # start no trial that would end after STOP_AT (an interrupted trial resumes later from
#       # its checkpoint, which is not committed)
set -u
profile=$1; trials=$2
PY=${PY:-.venv/bin/python}
for t in $trials; do
    if [ -f "results/$profile/tuning/$t.json" ]; then continue; fi
    if [ -n "${STOP_AT:-}" ] && [ $(( $(date +%s) + ${TRIAL_S:-0} )) -gt "$STOP_AT" ]; then
        echo "stopping before $t: it would end after $(date -d @"$STOP_AT")"; exit 0
    fi
    $PY -m busi_lib.experiments.tune --profile "$profile" --trial "$t" || exit 1
    if [ -f "results/$profile/tuning/$t.json" ]; then
        git add "results/$profile/tuning/$t.json"
        git commit -q -m "$profile tuning trial $t recorded" -- "results/$profile/tuning/$t.json" \
            && echo "committed trial $t"
    fi
done
