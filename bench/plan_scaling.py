"""How validating and planning grow with the number of runs: near-linear, so a spec at the job limit plans in seconds.

    python bench/plan_scaling.py                  # 1k, 10k and 50k runs
    python bench/plan_scaling.py --runs 1000 5000 --repeat 3

Each spec is the built-in model and dataset with a grid of learning rates x 100 dataset fractions x 1 epoch
(N runs, 2N train and evaluate jobs + 1 analysis: 50k runs is the 100,000-job limit). For each it prints the
seconds of `load_spec` (read, YAML, pydantic, the cross-field checks, which expand the runs) and of
`build_plan` (every job's settings and content hash), the best of --repeat, and microseconds per run: flat
per-run figures mean linear growth.
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from premem.plan.build import build_plan  # noqa: E402
from premem.spec.load import load_spec  # noqa: E402

FRACTIONS = 100


def spec_text(runs: int) -> str:
    """A spec of `runs` runs: runs / 100 learning rates x 100 dataset fractions x 1 epoch."""
    lrs = ", ".join(f"{(i + 1) * 1e-6:.6e}" for i in range(runs // FRACTIONS))
    fractions = ", ".join(f"{(i + 1) / FRACTIONS:g}" for i in range(FRACTIONS))
    return f"""\
name: scale-{runs}
models:
  - name: tiny
    builtin: tiny
    size: {{layers: 2, hidden: 64, heads: 2, mlp: 256, max_length: 128}}
    pretrain: {{dataset: arithmetic, examples: 100}}
datasets:
  - name: arithmetic
    builtin: arithmetic
    train_size: 64
    test_size: 16
grid:
  learning_rate: [{lrs}]
  epochs: [1]
  dataset_fraction: [{fractions}]
"""


def cpu() -> str:
    """The lscpu lines naming the CPU model and its flags (the platform's processor string without lscpu)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or platform.machine()
    return "\n".join(ln for ln in out.splitlines() if ln.startswith(("Model name", "Flags")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[1_000, 10_000, 50_000])
    ap.add_argument("--repeat", type=int, default=1, help="best of this many timings of each")
    args = ap.parse_args()
    print(cpu())
    print(f"Python {platform.python_version()}, {platform.platform()}\n")
    print(f"{'runs':>7} {'jobs':>8} {'validate s':>11} {'plan s':>8} {'validate us/run':>16} {'plan us/run':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.runs:
            path = Path(tmp) / f"scale-{n}.yaml"
            path.write_text(spec_text(n))
            best_v = best_p = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                spec = load_spec(path)
                t1 = time.perf_counter()
                plan = build_plan(spec)
                t2 = time.perf_counter()
                best_v, best_p = min(best_v, t1 - t0), min(best_p, t2 - t1)
            assert len(plan.runs) == n, (len(plan.runs), n)
            print(f"{n:>7,} {len(plan.jobs):>8,} {best_v:>11.2f} {best_p:>8.2f} {best_v / n * 1e6:>16.1f} "
                  f"{best_p / n * 1e6:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
