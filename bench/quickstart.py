"""Run the quickstart from an empty store and print its wall time, peak memory and R^2 figures.

    python bench/quickstart.py                # fresh store: pretraining included
    python bench/quickstart.py --keep-pretrain   # reuse a cached pretrained model (the "< 5 minutes" figure)
    python bench/quickstart.py --spec specs/curation-quickstart.yaml   # the curation study: its curves and
                                                                       # sample efficiency against iid

It runs `premem apply specs/quickstart.yaml` in a scratch folder (so your own .premem and reports are left
alone), samples the memory of the whole process tree (driver, Ray, workers) every 0.5 s, and prints what
the issue's targets are measured on.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and all its descendants, in bytes (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        stack.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "specs" / "quickstart.yaml"))
    ap.add_argument("--workdir", default=None, help="scratch folder (default .bench-<spec name> in the repo)")
    ap.add_argument("--keep-pretrain", action="store_true",
                    help="keep the store of an earlier bench run (its pretrained model and any finished jobs "
                         "are reused); without it the store starts empty")
    args = ap.parse_args()
    work = Path(args.workdir or ROOT / f".bench-{Path(args.spec).stem}")
    if work.exists() and not args.keep_pretrain:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    store = work / ".premem"
    if args.keep_pretrain and store.exists():
        # drop everything but pretraining, so finetuning and evaluation are measured again
        import sqlite3

        con = sqlite3.connect(store / "premem.db")
        keep = {r[0] for r in con.execute("SELECT id FROM jobs WHERE kind = 'pretrain' AND status = 'done'")}
        con.execute("DELETE FROM examples")
        con.execute("DELETE FROM jobs WHERE kind != 'pretrain'")
        con.commit()
        con.close()
        for p in (store / "artifacts").iterdir():
            if p.name not in keep:
                shutil.rmtree(p)
    shutil.copy(args.spec, work / "spec.yaml")
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "premem.cli", "apply", "spec.yaml"], cwd=work,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    peak = 0
    import threading

    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    while proc.poll() is None:
        peak = max(peak, tree_rss_bytes(proc.pid))
        time.sleep(0.5)
    reader.join(timeout=5)
    wall = time.time() - t0
    if proc.returncode != 0:
        print("".join(lines[-40:]))
        print(f"premem apply failed with exit code {proc.returncode}")
        return 1
    summary = json.loads((work / "reports" / "summary.json").read_text())
    print(f"date: {time.strftime('%Y-%m-%d')}  machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    print(f"spec: {args.spec}  pretraining {'reused' if args.keep_pretrain else 'included'}")
    print(f"wall time: {wall:.0f} s")
    print(f"peak memory (driver + Ray + workers, RSS): {peak / 2**30:.2f} GiB")
    if summary["runs"]:
        print_grid(summary)
    if summary.get("curation"):
        print_curation(summary["curation"])
    return 0


def print_grid(summary: dict) -> None:
    """The grid's figures: R^2 of PreMemAcc and of train accuracy, the test accuracies' spread, the gap."""
    pm, tr = summary["premem"], summary["train_acc"]
    lo, hi = summary.get("test_acc_range") or (float("nan"), float("nan"))
    gap = summary.get("perplexity_gap", {})
    print(f"runs: {len(summary['runs'])}  checkpoints: {summary.get('checkpoints')}")
    blocks = summary.get("blocks") or []
    if len(blocks) > 1:  # several (model, dataset) blocks: under premem.calibrate per_block, one p each
        print(f"chosen p: {pm['p'] if pm['p'] is not None else 'per block'}")
        for b in blocks:
            r2 = f"{b['r2']:.3f}" if b["r2"] is not None else "n/a"
            print(f"  {b['model']} / {b['dataset']}: p = {b['p']}, R^2 test vs PreMemAcc (y = x) {r2}")
    else:
        print(f"chosen p: {pm['p']}")
    print(f"R^2 test vs PreMemAcc (y = x): {pm['r2']:.3f}" if pm["r2"] is not None else "R^2 PreMemAcc: n/a")
    print(f"R^2 test vs train accuracy (y = x): {tr['r2']:.3f}" if tr["r2"] is not None else "R^2 train: n/a")
    print(f"test accuracy range: {lo:.3f} .. {hi:.3f} (spread {hi - lo:.3f})")
    if gap:
        print("median perplexity of correct examples: memorized "
              f"{gap.get('memorized_correct_median_perplexity')}, not memorized "
              f"{gap.get('unmemorized_correct_median_perplexity')}, floor {gap.get('irreducible_perplexity')}")


def print_curation(cur: dict) -> None:
    """The curation study's figures: each strategy's curve and its sample efficiency against iid."""
    print(f"curation: {cur['originals']} originals, new examples per round {cur['settings']['new_examples']}")
    for s in cur["strategies"]:
        curve = ", ".join(f"{p['size']}: {p['test_acc']:.3f}" for p in cur[s]["curve"] if p["test_acc"] is not None)
        print(f"  {s:<9} test accuracy by training-set size: {curve}")
    for s in cur["strategies"]:
        if s == "iid":
            continue
        eff = cur[s].get("efficiency") or []
        cells = ", ".join(f"at {e['target']:.3f}: " + (f"{e['ratio']:.2f}x" if e["ratio"] is not None else "n/a")
                          for e in eff)
        mean = cur[s].get("mean_ratio")
        print(f"  {s:<9} sample efficiency vs iid (iid size / its size) {cells or cur[s].get('targets_note')}; "
              f"mean {mean:.2f}x" if mean is not None else
              f"  {s:<9} sample efficiency vs iid: {cells or cur[s].get('targets_note')}")


    return 0


if __name__ == "__main__":
    sys.exit(main())
