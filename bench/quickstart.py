"""Run the quickstart from an empty store and print its wall time, peak memory and R^2 figures.

    python bench/quickstart.py                # fresh store: pretraining included
    python bench/quickstart.py --keep-pretrain   # reuse a cached pretrained model (the "< 5 minutes" figure)
    python bench/quickstart.py --spec specs/curation-quickstart.yaml   # the curation study: its curves and
                                                                       # sample efficiency against iid
    python bench/quickstart.py --spec specs/curation-quickstart.yaml --seeds 0,1,2   # ... repeated over seeds
    python bench/quickstart.py --sampling-dtype auto   # the spec's copy samples in float32 on a CPU without
                                                       # native bfloat16 (other job ids than the shipped spec's)

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
    ap.add_argument("--seeds", default=None,
                    help="comma-separated seeds: the spec is run with `grid.seeds` (or `curation.seeds` for a "
                         "curation spec) set to them, every run repeated once per seed (other job ids than the "
                         "shipped spec's, in the bench's own store)")
    ap.add_argument("--sampling-dtype", default=None, choices=["float32", "bfloat16", "float16", "auto"],
                    help="run the spec's copy with this evaluation.sampling_dtype (`auto`: bfloat16 only where "
                         "the CPU runs it natively)")
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
    if args.seeds or args.sampling_dtype:
        import yaml

        text = yaml.safe_load(Path(args.spec).read_text())
        if args.seeds:
            section = "curation" if text.get("curation") else "grid"
            text.setdefault(section, {})["seeds"] = [int(s) for s in args.seeds.split(",")]
        if args.sampling_dtype:
            text.setdefault("evaluation", {})["sampling_dtype"] = args.sampling_dtype
        (work / "spec.yaml").write_text(yaml.safe_dump(text, sort_keys=False))
    else:
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
    print(f"spec: {args.spec}  pretraining {'reused' if args.keep_pretrain else 'included'}"
          + (f"  seeds {args.seeds}" if args.seeds else "")
          + (f"  sampling_dtype {args.sampling_dtype}" if args.sampling_dtype else ""))
    print(f"cpu flags: {cpu_flags_line()}")
    print(f"wall time: {wall:.0f} s")
    print(f"peak memory (driver + Ray + workers, RSS): {peak / 2**30:.2f} GiB")
    if summary["runs"]:
        print_grid(summary)
    if summary.get("curation"):
        print_curation(summary["curation"])
    return 0


def cpu_flags_line() -> str:
    """The CPU's model name and the flags that decide premem's CPU speed (AVX2/AVX-512/AMX), from lscpu."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or platform.machine()
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = info.get("Flags", "").split()
    wanted = [f for f in flags if f in ("avx2", "fma", "f16c") or f.startswith(("avx512", "amx"))]
    return f"{info.get('Model name', '?').strip()}: {' '.join(wanted) or 'no avx2'}"


def _ci(ci) -> str:
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and None not in ci else ""


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
        curve = ", ".join(f"{p['size']:.0f}: {p['test_acc']:.3f}{_ci(p.get('test_acc_ci'))}"
                          for p in cur[s]["curve"] if p["test_acc"] is not None)
        print(f"  {s:<9} test accuracy by training-set size: {curve}")
    for s in cur["strategies"]:
        if s == "iid":
            continue
        eff = cur[s].get("efficiency") or []
        cells = ", ".join(f"at {e['target']:.3f}: " + (f"{e['ratio']:.2f}x{_ci(e.get('ratio_ci'))}"
                                                        if e["ratio"] is not None else "n/a") for e in eff)
        mean = cur[s].get("mean_ratio")
        print(f"  {s:<9} sample efficiency vs iid (iid size / its size) {cells or cur[s].get('targets_note')}; "
              f"mean {mean:.2f}x{_ci(cur[s].get('mean_ratio_ci'))}" if mean is not None else
              f"  {s:<9} sample efficiency vs iid: {cells or cur[s].get('targets_note')}")


    return 0


if __name__ == "__main__":
    sys.exit(main())
