#!/usr/bin/env python3
"""The step-rate control: arms run at a slower optimizer step rate (a comparison folder
whose arm labels are renamed with a suffix) paired with the same arms at the lever
table's rate, and with best_of_n, per seed on the same problems (95% multiset
bootstrap, as scripts/levers.py).

Usage: scripts/step_rate.py OUT.md SLOW_DIR SUFFIX DIR [DIR...]
e.g.   scripts/step_rate.py step-rate.md eq-e -slow eq-a eq-d
"""
import importlib.util
import os
import sys

spec = importlib.util.spec_from_file_location(
    "levers", os.path.join(os.path.dirname(os.path.abspath(__file__)), "levers.py")
)
lv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lv)


def main():
    out, slow_dir, suffix, dirs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    runs, meta = lv.load(dirs)
    slow, slow_meta = lv.load([slow_dir])
    for (a, s), r in slow.items():
        label = a if a.endswith(suffix) else a + suffix
        runs[(label, s)] = r
        meta[(label, s)] = slow_meta[(a, s)]
    k_eval = next(iter(next(iter(runs.values())).values()))[1]
    metrics = [
        ("pass@1", lambda k, c: c / k),
        ("pass@8", lambda k, c: lv.pass_at(k, c, 8)),
        (f"pass@{k_eval}", lambda k, c: lv.pass_at(k, c, k_eval)),
    ]
    seeds = sorted({s for (_, s) in runs})
    mean = lambda xs: sum(xs) / len(xs)
    lines = [f"# Step-rate control: {slow_dir} (labels + `{suffix}`) against {', '.join(dirs)}", ""]
    lines.append("| arm | steps / 1k train tokens | " + " | ".join(f"{n} mean" for n, _ in metrics) + " |")
    lines.append("|---|---|" + "---|" * len(metrics))
    arms = sorted({a for (a, _) in runs if a.endswith(suffix)} | {a[: -len(suffix)] for (a, _) in runs if a.endswith(suffix)} | {"best_of_n"})
    for a in arms:
        if not all((a, s) in runs for s in seeds):
            continue
        cells = []
        for _, f in metrics:
            cells.append(f"{mean([sum(f(k, c) for (_, k, c) in runs[(a, s)].values()) / len(runs[(a, s)]) for s in seeds]):.1%}")
        rate = mean([meta[(a, s)]["steps_per_1k_tokens"] for s in seeds])
        lines.append(f"| {a} | {rate:.3f} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| comparison | " + " | ".join(f"{n} per seed (95% CI)" for n, _ in metrics) + " |")
    lines.append("|---|" + "---|" * len(metrics))
    pairs = []
    for (a, _) in sorted(slow):
        base = a[: -len(suffix)] if a.endswith(suffix) else a
        pairs.append((base + suffix, base))
        pairs.append(("best_of_n", base + suffix))
    seen = set()
    for a, b in pairs:
        if (a, b) in seen or not all((a, s) in runs and (b, s) in runs for s in seeds):
            continue
        seen.add((a, b))
        cells = []
        for _, f in metrics:
            per = []
            for s in seeds:
                m, lo, hi = lv.paired(runs[(a, s)], runs[(b, s)], f, 3000 + s)
                per.append(f"{m * 100:+.1f} ({lo * 100:+.1f}, {hi * 100:+.1f})")
            cells.append(" / ".join(per))
        lines.append(f"| {a} - {b} | " + " | ".join(cells) + " |")
    open(out, "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
