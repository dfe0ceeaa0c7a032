#!/bin/sh
# The switch ablation (fair-terms section 3) rerun with the December 6 build from the
# default preset's plateau policy by the same protocol (test-time-default), seed 1,
# 600k generated tokens per arm, mean@16 on the 200 validation problems; intervals by
# number multiset, per-problem file written.
./arbor-r3 compare --from runs/d-plateau-model --validation-size 200 --test-size 1000 --eval-on validation \
  --seeds 1 --budget-tokens 600000 --milestones 3 --eval-k 16 \
  --store runs/abl.sled --name abl --out results/abl-600k \
  --methods deepsearch,deepsearch-paper,grpo \
  --arm nocheck=deepsearch:search.step_check=false \
  --arm norecinv=deepsearch:search.record_invalid=false \
  --arm nomerge=deepsearch:search.merge_siblings=false \
  --arm skip=deepsearch:search.unsolved=skip \
  --arm negative=deepsearch:search.unsolved=negative \
  --arm nofilter=deepsearch:adaptive.enabled=false
echo "EXIT $?"
touch abl.done
# The older measurement "GRPO on the default preset" rerun: fresh store, seed 1.
mkdir -p older && cd older && rm -rf runs && /usr/bin/time -v ../arbor-r3 train --method grpo --headless --seed 1 > grpo-default-s1.json 2> grpo-default-s1.log
echo "EXIT $?"
touch ../older.done
