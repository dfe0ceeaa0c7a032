#!/bin/sh
# The best tree arm (deepsearch-arbor), the best non-tree arm (passk k=2) and grpo on the
# default preset, from the default preset's GRPO plateau policy (../../test-time-default),
# at equal optimizer steps per token (0.12 per 1k train tokens, at least 16 sequences a
# step), 3 seeds, 1M generated tokens per run, mean@32 on 1,000 test problems.
# Settings carried over from default4 (chosen there on validation), not re-chosen here.
arbor compare --from runs/d-plateau-model --config dcmp-eq.toml --validation-size 200 --test-size 1000 \
  --seeds 1,2,3 --budget-tokens 1000000 --milestones 2 --eval-k 32 --steps-per-1k-tokens 0.12 \
  --store runs/def-eq.sled --name def-eq --out def-eq \
  --methods grpo \
  --arm deepsearch-arbor=deepsearch:adaptive.enabled=false \
  --arm passk=passk:passk.k=2 \
  --reference deepsearch-arbor

../../../../scripts/levers.py levers.md def-eq
