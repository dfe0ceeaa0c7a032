#!/bin/sh
# Equal optimizer steps per token (0.12 steps per 1k train tokens, at least 16 sequences a
# step) on default4 from the GRPO plateau policy (../README.md, step 1): test split, 3
# seeds, 1M generated tokens per run, mean@32 with unbiased pass@8 and pass@32,
# evaluations at 500k and 1M tokens. The two comparisons ran side by side (one process
# each on the 2 cores, with builds beside them): wall seconds are not comparable.
arbor compare --from runs/d4-plateau-model --config d4cmp-eq.toml --validation-size 200 --test-size 1000 \
  --seeds 1,2,3 --budget-tokens 1000000 --milestones 2 --eval-k 32 --steps-per-1k-tokens 0.12 \
  --store runs/eq-a.sled --name eq-a --out eq-a \
  --methods grpo,grpo_hard,deepsearch \
  --arm deepsearch-arbor=deepsearch:adaptive.enabled=false \
  --arm ds-outcome=deepsearch:adaptive.enabled=false:search.token_score=outcome \
  --arm passk=passk:passk.k=2 \
  --reference deepsearch-arbor
arbor compare --from runs/d4-plateau-model --config d4cmp-eq.toml --validation-size 200 --test-size 1000 \
  --seeds 1,2,3 --budget-tokens 1000000 --milestones 2 --eval-k 32 --steps-per-1k-tokens 0.12 \
  --store runs/eq-b.sled --name eq-b --out eq-b \
  --methods treerl,deepsearch-paper \
  --arm treerl-random=treerl:treerl.fork=random \
  --reference treerl
# Added after the lever table (issue 24 and 25 leftovers): tree_distill after its fixes
# (step judgement, merging, the unfinished reward, the value head fitted before RL) and
# dapo; then the rest of the search-distillation comparison's arms. Each ran alone.
arbor compare --from runs/d4-plateau-model --config d4cmp-eq.toml --validation-size 200 --test-size 1000 \
  --seeds 1,2,3 --budget-tokens 1000000 --milestones 2 --eval-k 32 --steps-per-1k-tokens 0.12 \
  --store runs/eq-c.sled --name eq-c --out eq-c \
  --methods tree_distill,dapo \
  --reference tree_distill
arbor compare --from runs/d4-plateau-model --config d4cmp-eq.toml --validation-size 200 --test-size 1000 \
  --seeds 1,2,3 --budget-tokens 1000000 --milestones 2 --eval-k 32 --steps-per-1k-tokens 0.12 \
  --store runs/eq-d.sled --name eq-d --out eq-d \
  --methods best_of_n,cispo \
  --reference cispo
../../../../scripts/levers.py levers.md eq-a eq-b eq-c eq-d
# The step-rate control: grpo and passk at best_of_n's rate (0.049 steps per 1k tokens).
arbor compare --from runs/d4-plateau-model --config d4cmp-eq.toml --validation-size 200 --test-size 1000 \
  --seeds 1,2,3 --budget-tokens 1000000 --milestones 2 --eval-k 32 --steps-per-1k-tokens 0.049 \
  --store runs/eq-e.sled --name eq-e --out eq-e \
  --methods grpo \
  --arm passk-slow=passk:passk.k=2 \
  --reference grpo
../../../../scripts/step_rate.py step-rate.md eq-e -slow eq-a eq-d
# tree_distill's settings on validation (seed 1, 500k tokens), then the chosen one
# (the binary reward) on test.
arbor compare --from runs/d4-plateau-model --config d4cmp-eq.toml --validation-size 200 --test-size 1000 \
  --eval-on validation --seeds 1 --budget-tokens 500000 --milestones 1 --eval-k 16 --steps-per-1k-tokens 0.12 \
  --store runs/td-val.sled --name td-val --out td-val \
  --methods tree_distill \
  --arm td-vlr1e-3=tree_distill:tree_distill.value_lr=0.001 \
  --arm td-nofit=tree_distill:tree_distill.prefit_problems=0 \
  --arm td-binary=tree_distill:tree_distill.reward=binary \
  --reference tree_distill
arbor compare --from runs/d4-plateau-model --config d4cmp-eq.toml --validation-size 200 --test-size 1000 \
  --seeds 1,2,3 --budget-tokens 1000000 --milestones 2 --eval-k 32 --steps-per-1k-tokens 0.12 \
  --store runs/eq-f.sled --name eq-f --out eq-f \
  --methods "" \
  --arm td-binary=tree_distill:tree_distill.reward=binary \
  --reference td-binary
../../../../scripts/levers.py levers.md eq-a eq-b eq-c eq-d eq-f
