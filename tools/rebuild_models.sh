#!/usr/bin/env bash
# Rebuild the fold models of a recorded experiment (the models are not committed, only the
# records): each fold is trained again from scratch by `busi_lib.experiments.rerun` in WORK, compared with
# its committed record (results/<profile>/reruns/<experiment>_fold<k>.json, committed at once),
# and its model copied to results/<profile>/<experiment>/models/ for `busi_lib.serve.release`.
#
#   bash tools/rebuild_models.sh cpu robust_grouped_e60 "0 1 2 3 4"
#   STOP_AT=$(date -d 15:40 +%s) FOLD_S=1150 bash tools/rebuild_models.sh ...
#       # start no fold that would end after STOP_AT
set -u
profile=$1; exp=$2; folds=${3:-"0 1 2 3 4"}
PY=${PY:-.venv/bin/python}
WORK=${WORK:-/tmp/rebuild_$exp}
mkdir -p "results/$profile/$exp/models"
for k in $folds; do
    if [ -f "results/$profile/$exp/models/fold$k.keras" ]; then continue; fi
    if [ -n "${STOP_AT:-}" ] && [ $(( $(date +%s) + ${FOLD_S:-0} )) -gt "$STOP_AT" ]; then
        echo "stopping before $exp fold $k: it would end after $(date -d @"$STOP_AT")"; exit 0
    fi
    $PY -m busi_lib.experiments.rerun --profile "$profile" --experiment "$exp" --fold "$k" --work-dir "$WORK"
    rc=$?
    cp "$WORK/$profile/$exp/models/fold$k.keras" "results/$profile/$exp/models/fold$k.keras" || exit 1
    git add "results/$profile/reruns/${exp}_fold$k.json"
    git commit -q -m "$profile/$exp fold $((k + 1)) (index $k) retrained for its model (rerun agrees: $([ $rc = 0 ] && echo yes || echo NO))" \
        -- "results/$profile/reruns/${exp}_fold$k.json" && echo "committed rerun of $exp fold $k (rc $rc)"
done
