#!/usr/bin/env python3
"""How much do number multisets widen arbor's intervals? Problem against multiset resampling.

Usage: scripts/design_effect.py FILE [FILE...]

Each FILE is a per-problem file (arbor compare's per_problem.jsonl, the file arbor eval
names, or arbor export --evaluations). For every group (run and iteration, or strategy
and budget) it prints the 95% percentile-bootstrap half-width of pass@1 (mean@k or the
test-time accuracy) resampling single problems (what arbor did before issue 24) and
resampling whole number multisets (what it does now), 1,000 draws each, and their ratio.
"""
import json
import random
import sys


def half_width(units, draws=1000, seed=1):
    rng = random.Random(seed)
    means = []
    for _ in range(draws):
        s = c = 0.0
        for _ in range(len(units)):
            a, b = units[rng.randrange(len(units))]
            s += a
            c += b
        means.append(s / c)
    means.sort()
    return (means[974] - means[25]) / 2


def main(files):
    print("| file | group | problems | multisets | half-width, problems | half-width, multisets | ratio |")
    print("|---|---|---|---|---|---|---|")
    for f in files:
        groups = {}
        for line in open(f):
            x = json.loads(line)
            key = tuple(str(x[k]) for k in ("run", "iteration", "strategy", "budget") if k in x)
            v = x["score"] if "score" in x else x["correct"] / x["k"]
            groups.setdefault(key, []).append((x["multiset"], v))
        for key, rows in groups.items():
            clusters = {}
            for m, v in rows:
                c = clusters.setdefault(m, [0.0, 0])
                c[0] += v
                c[1] += 1
            p = half_width([(v, 1) for _, v in rows])
            m = half_width(list(clusters.values()))
            ratio = m / p if p > 0 else float("nan")
            print(f"| {f} | {' '.join(key)} | {len(rows)} | {len(clusters)} | {100 * p:.2f} | {100 * m:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
