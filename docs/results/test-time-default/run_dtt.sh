#!/bin/sh
# The default preset's plateau (GRPO, seed 9, the plateau rule), then test time on it.
set -e
arbor train --method grpo --headless --seed 9 --iterations 5000 --config dplateau.toml --store runs/dplateau.sled --run dplateau > plateau-summary.json 2> plateau.log
arbor save-model --run dplateau --store runs/dplateau.sled --out runs/d-plateau-model
arbor eval --model runs/d-plateau-model --config deval.toml --store runs/dtt.sled \
  --strategies best_of_n_checked,sample,best_of_n,mcts --budgets 4,16 --reference best_of_n_checked \
  > test-time-arbor.json 2> test-time-arbor.txt
arbor eval --model runs/d-plateau-model --config deval-paper.toml --store runs/dtt.sled \
  --strategies best_of_n_checked,mcts --budgets 4,16 --reference best_of_n_checked \
  > test-time-paper-switches.json 2> test-time-paper-switches.txt
