#!/bin/sh
# Test time on the default4 plateau policy, 1,000 test problems, budgets 4 and 16.
./arbor-eval eval --model runs/d4-plateau-model --config d4eval.toml --store runs/tt.sled \
  --strategies best_of_n_checked,sample,best_of_n,mcts --budgets 4,16 --reference best_of_n_checked \
  > results/test-time-arbor.json 2> results/test-time-arbor.txt
./arbor-eval eval --model runs/d4-plateau-model --config d4eval-paper.toml --store runs/tt.sled \
  --strategies best_of_n_checked,mcts --budgets 4,16 --reference best_of_n_checked \
  > results/test-time-paper-switches.json 2> results/test-time-paper-switches.txt
