#!/usr/bin/env bash
# Train experiments fold by fold in the background and commit each fold's records as it lands
# (only the experiment's own folder is committed, whatever else is staged).
#
#   bash tools/train_and_commit.sh cpu "multitask_grouped multitask" [extra busi_lib.experiments.crossval args]
#   BREADTH=1 bash tools/train_and_commit.sh ...   # fold 1 of every experiment first, then fold 2
#   STOP_AT=$(date -d 12:20 +%s) FOLD_S=2100 bash tools/train_and_commit.sh ...
#       # start no fold that would end after STOP_AT (a fold cut off is lost: checkpoints are
#       # not committed); FOLD_S is the expected length of one fold in seconds
set -u
profile=$1; shift
exps=$1; shift
PY=${PY:-.venv/bin/python}
plan=$($PY -c "
import sys
from busi_lib.experiments.crossval import work_plan
for e, k in work_plan('$profile', '$exps'.split(), breadth_first=bool('${BREADTH:-}')):
    print(e, k)
")
echo "$plan" | while read -r exp k; do
    [ -z "$exp" ] && continue
    if [ -f "results/$profile/$exp/fold$k.json" ]; then continue; fi
    if [ -f "results/$profile/$exp/diverged_fold$k.json" ]; then continue; fi
    if [ -n "${STOP_AT:-}" ] && [ $(( $(date +%s) + ${FOLD_S:-0} )) -gt "$STOP_AT" ]; then
        echo "stopping before $exp fold $k: it would end after $(date -d @"$STOP_AT")"; exit 0
    fi
    $PY -m busi_lib.experiments.crossval --profile "$profile" --experiment "$exp" --folds "$k" "$@" || exit 1
    what=""
    [ -f "results/$profile/$exp/fold$k.json" ] && what="recorded"
    [ -f "results/$profile/$exp/diverged_fold$k.json" ] && what="diverged (failure recorded)"
    if [ -n "$what" ]; then
        git add "results/$profile/$exp" "results/splits" 2>/dev/null
        git commit -q -m "$profile/$exp fold $((k + 1)) (index $k) $what" -- "results/$profile/$exp" "results/splits" \
            && echo "committed $profile/$exp fold $k: $what"
    fi
done
