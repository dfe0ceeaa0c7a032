#!/bin/sh
# Choosing passk's k and treerl's shape on validation: seed 1, 500k tokens, mean@16.
./arbor-exp compare --from runs/d4-plateau-model --config d4cmp.toml --validation-size 200 --test-size 1000 \
  --eval-on validation --seeds 1 --budget-tokens 500000 --milestones 1 --eval-k 16 \
  --store runs/levers-val.sled --name levers-val --out results/levers-val \
  --methods grpo \
  --arm passk-k2=passk:passk.k=2 --arm passk-k4=passk:passk.k=4 \
  --arm treerl-m2n3=treerl --arm treerl-m4n1=treerl:treerl.chains=4:treerl.forks=1 \
  --reference grpo
