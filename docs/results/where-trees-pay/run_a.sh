#!/bin/sh
# Arms without settings to choose: test split, 3 seeds, 1M generated tokens each.
./arbor-exp compare --from runs/d4-plateau-model --config d4cmp.toml --validation-size 200 --test-size 1000 \
  --seeds 1,2,3 --budget-tokens 1000000 --milestones 1 --eval-k 8 \
  --store runs/levers-a.sled --name levers-a --out results/levers-a \
  --methods grpo,grpo_hard,deepsearch \
  --arm deepsearch-arbor=deepsearch:adaptive.enabled=false \
  --arm ds-outcome=deepsearch:adaptive.enabled=false:search.token_score=outcome \
  --reference deepsearch-arbor
