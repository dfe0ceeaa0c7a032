#!/usr/bin/env python3
"""Replace a comparison's per-arm intervals with the ones `arbor intervals` recomputes.

Usage: scripts/reinterval.py DIR

DIR is an `arbor compare` output folder made before issue 24, when per-arm intervals
resampled problems (the wrong unit: problems share number multisets). It must hold
comparison.json, table.md and intervals.jsonl, the output of
`arbor intervals DIR/per_problem.jsonl > DIR/intervals.jsonl`. Each run's `pass1_ci` in
comparison.json and its "pass@1 end (95% CI)" cell in table.md are rewritten from
intervals.jsonl (which resamples number multisets); the point estimates must agree, or
nothing is written. Paired differences already resampled multisets and are kept.
"""
import json
import sys


def main(d):
    groups = {}
    for line in open(f"{d}/intervals.jsonl"):
        g = json.loads(line)
        groups[g["group"]["run"]] = g
    cmp = json.load(open(f"{d}/comparison.json"))
    for r in cmp["runs"]:
        g = groups[r["run"]]
        if abs(g["pass@1"] - r["pass1"]) > 1e-12:
            sys.exit(f"{d}: run {r['run']}: pass@1 {r['pass1']} in comparison.json, {g['pass@1']} in intervals.jsonl")
        r["pass1_ci"] = g["pass@1_ci95"]
    cmp["intervals"] = "per-arm intervals resample number multisets (rewritten from intervals.jsonl by scripts/reinterval.py)"
    lines = open(f"{d}/table.md").read().split("\n")
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    col = header.index("pass@1 end (95% CI)")
    by_key = {(r["method"], str(r["seed"]), str(r["iterations"])): r for r in cmp["runs"]}
    out = lines[:2]
    for line in lines[2:]:
        cells = line.strip().strip("|").split("|")
        if len(cells) != len(header):
            out.append(line)
            continue
        key = tuple(c.strip() for c in cells[:3])
        r = by_key.get(key)
        if r is None:  # a mean over seeds: it has no interval
            out.append(line)
            continue
        lo, hi = r["pass1_ci"]
        cells[col] = f" {100 * r['pass1']:.1f}% ({100 * lo:.1f}%-{100 * hi:.1f}%) "
        out.append("|" + "|".join(cells) + "|")
    out[0] = out[0].replace("pass@1 end (95% CI)", "pass@1 end (95% CI by multiset)")
    json.dump(cmp, open(f"{d}/comparison.json", "w"), indent=2)
    open(f"{d}/table.md", "w").write("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
