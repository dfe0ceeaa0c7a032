#!/bin/sh
# Arms whose settings were chosen on validation (levers-val: passk k=2, treerl M=2 N=3 T=1 L=1):
# test split, 3 seeds, 1M generated tokens each, as levers-a.
./arbor-exp compare --from runs/d4-plateau-model --config d4cmp.toml --validation-size 200 --test-size 1000 \
  --seeds 1,2,3 --budget-tokens 1000000 --milestones 1 --eval-k 8 \
  --store runs/levers-b.sled --name levers-b --out results/levers-b \
  --methods treerl \
  --arm passk=passk:passk.k=2 \
  --arm treerl-random=treerl:treerl.fork=random \
  --reference treerl
