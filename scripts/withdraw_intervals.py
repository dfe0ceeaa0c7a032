#!/usr/bin/env python3
"""Withdraw per-arm intervals that resampled problems, from results that kept no raw data.

Usage: scripts/withdraw_intervals.py FILE [FILE...]

Before issue 24, per-arm (and per-strategy) 95% intervals resampled problems, but
problems share number multisets, so the resampling unit was wrong (measured where both
can be computed, the widths differ by -20% to +22%, with no consistent sign). Where a
run wrote a
per-problem file, `arbor intervals` recomputes them (`scripts/reinterval.py`); where it
did not, this script withdraws them, leaving point estimates and paired differences
(which always resampled multisets) untouched:

* JSON (`arbor compare`, `arbor eval --strategies`, `arbor train` output): the keys
  `pass1_ci`, `pass_k_ci`, `pass@1_ci95`, `pass@k_ci95` and `accuracy_ci95` are removed
  (a `paired_diff`'s or a `paired` entry's `ci95` is kept), and a top-level
  `intervals_withdrawn` says why.
* Markdown tables and raw command output: a cell "6.0% (4.8%-7.3%)" or "12.5% (10.8-14.4)"
  under a header "... (95% CI)" that is not a paired-difference column ("minus") becomes
  "6.0%", and its header says the interval was withdrawn; a column headed "95% CI" alone
  is emptied.
"""
import json
import re
import sys

WHY = ("per-arm intervals withdrawn (issue 24): they resampled problems, which share "
       "number multisets, and the run kept no per-problem counts to redo them")
KEYS = {"pass1_ci", "pass_k_ci", "pass@1_ci95", "pass@k_ci95", "accuracy_ci95"}
CELL = re.compile(r"^(\s*-?[0-9.]+%)\s*\([0-9.]+%?\s*-\s*[0-9.]+%?\)(\s*)$")


def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in KEYS}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v


def withdraw_json(path):
    text = open(path).read()
    compact = "\n" not in text.strip()
    v = strip(json.loads(text))
    if isinstance(v, dict):
        v["intervals_withdrawn"] = WHY
    out = json.dumps(v, separators=(",", ":")) if compact else json.dumps(v, indent=2)
    open(path, "w").write(out + "\n")


def withdraw_table(path):
    lines = open(path).read().split("\n")
    cols = []  # (column index, kind) of the table being read
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            cols = []
            continue
        cells = line.split("|")
        if set(line) <= set("|-: "):
            continue
        if not cols and any("CI" in c for c in cells):
            for j, c in enumerate(cells):
                h = c.strip()
                if h == "95% CI":
                    cols.append((j, "empty"))
                    cells[j] = " 95% CI (withdrawn: it resampled problems) "
                elif "(95% CI" in h and "minus" not in h:
                    cols.append((j, "strip"))
                    cells[j] = " " + re.sub(r"\(95% CI[^)]*\)", "(95% CI withdrawn: it resampled problems)", h) + " "
            lines[i] = "|".join(cells)
            continue
        for j, kind in cols:
            if j < len(cells):
                if kind == "empty":
                    cells[j] = " - "
                else:
                    m = CELL.match(cells[j])
                    if m:
                        cells[j] = m.group(1) + m.group(2)
        lines[i] = "|".join(cells)
    open(path, "w").write("\n".join(lines))


def main(paths):
    for p in paths:
        if p.endswith(".json"):
            withdraw_json(p)
        else:
            withdraw_table(p)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
