#!/usr/bin/env python3
"""How far `moesim run`'s default fast step path disagrees with `--detailed` (the
event-driven step simulator with the fluid max-min network) on every shipped
scenario. Prints a Markdown table; `--out FILE` also writes it.

    tools/fast_vs_detailed.py [--moesim build/ci/sim/moesim] [--out scenarios/FAST-VS-DETAILED.md]

Error = detailed / fast - 1 per metric; the target (issue #5) is within 2 %.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = [
    ("tok/s/GPU", ("output_tokens_per_s_per_gpu",)),
    ("TTFT p50", ("ttft_ms", "p50")),
    ("TTFT p99", ("ttft_ms", "p99")),
    ("TPOT p50", ("tpot_ms", "p50")),
    ("TPOT p99", ("tpot_ms", "p99")),
    ("ITL p99", ("itl_ms", "p99")),
    ("E2E p50", ("e2e_ms", "p50")),
]
TARGET_PCT = 2.0


def get(summary, path):
    for p in path:
        summary = summary[p]
    return summary


def run(moesim, scenario, extra, out):
    t0 = time.monotonic()
    p = subprocess.run([moesim, "run", "--quiet", scenario, "--json", out, *extra], cwd=ROOT, capture_output=True,
                       text=True)
    if p.returncode != 0:
        sys.exit(f"moesim run {scenario} {' '.join(extra)} failed ({p.returncode}): {p.stderr.strip()}")
    return json.load(open(out))["summary"], time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moesim", default=os.path.join(ROOT, "build/ci/sim/moesim"))
    ap.add_argument("--out")
    ap.add_argument("scenarios", nargs="*", help="default: scenarios/*.json")
    a = ap.parse_args()
    moesim = os.path.abspath(a.moesim)
    files = a.scenarios or sorted(os.path.relpath(f, ROOT) for f in glob.glob(os.path.join(ROOT, "scenarios/*.json")))
    head = "| scenario | " + " | ".join(name for name, _ in METRICS) + " | worst | wall fast / detailed |"
    lines = [head, "|" + "---|" * (len(METRICS) + 3)]
    worst_all = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            fast, wf = run(moesim, f, [], os.path.join(tmp, "fast.json"))
            det, wd = run(moesim, f, ["--detailed"], os.path.join(tmp, "det.json"))
            cells, worst = [], 0.0
            for _, path in METRICS:
                x, y = get(fast, path), get(det, path)
                err = (y / x - 1) * 100 if x else 0.0
                worst = max(worst, abs(err))
                cells.append(f"{err:+.1f}%")
            worst_all = max(worst_all, worst)
            lines.append(f"| {os.path.basename(f)} | " + " | ".join(cells) +
                         f" | {worst:.1f}%{'' if worst <= TARGET_PCT else ' (over)'} | {wf:.1f} / {wd:.1f} s |")
            print(lines[-1], file=sys.stderr, flush=True)
    text = "\n".join(lines) + f"\n\nWorst disagreement over all scenarios and metrics: {worst_all:.1f}% " \
                              f"(target {TARGET_PCT:g}%).\n"
    print(text)
    if a.out:
        with open(a.out + ".tmp", "w") as fh:
            fh.write(text)
        os.replace(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()
