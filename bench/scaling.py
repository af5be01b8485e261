"""How evaluation cost grows with work, and what the driver costs per job.

    python bench/scaling.py                        # all three parts (about 5 minutes on 2 cores)
    python bench/scaling.py --part examples --part k
    python bench/scaling.py --part overhead --jobs 200

- `examples`: one checkpoint's evaluation (`premem.engine.evaluate.evaluate_checkpoint`, the quickstart's evaluation
  settings: k = 4, T = 0.8, top_p = 0.95, 160 new tokens at most, sampling in bfloat16) of 256, 1024 and 4096
  train examples, on the built-in model pretrained by bench/eval_throughput.py (cached in /tmp/premem-bench).
- `k`: the same on 256 examples with k = 1, 2, 4, 8, 16 samples each.
  For both, time is fitted by a line against the work (examples, or samples drawn): a straight line (R^2 near
  1) and a per-unit cost that does not grow with size show that cost is linear in work.
- `overhead`: jobs that do nothing, run by `premem.jobs.schedule.run_plan` through Ray and the store exactly as
  `premem apply` runs real jobs (submission, Ray task, result returned, one SQLite transaction by the driver):
  a chain of jobs (each waiting for the one before: the latency a job adds) and the same number of independent
  jobs (throughput). The no-op kind exists only in this script: Ray's `worker_process_setup_hook` registers it in
  every worker's `premem.jobs.runners.RUNNERS`, so premem itself has no test hook.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_throughput import DEFAULT_CACHE, TASK, pretrained_tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def linear_fit(x, y) -> tuple[float, float, float]:
    """(intercept, slope, R^2) of the least-squares line y = a + b x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    b, a = np.polyfit(x, y, 1)
    res = y - (a + b * x)
    return float(a), float(b), float(1 - (res ** 2).sum() / ((y - y.mean()) ** 2).sum())


def evaluate(loaded, n: int, k: int, examples) -> dict:
    from premem.engine.evaluate import evaluate_checkpoint
    from premem.engine.sampling import SamplingParams

    params = SamplingParams(n=k, temperature=0.8, top_p=0.95, max_new_tokens=160, seed=0)
    stats: dict = {}
    t0 = time.perf_counter()
    evaluate_checkpoint(loaded, examples[:n], [], params, batch_size=256, sampling_dtype="bfloat16", stats=stats)
    stats["seconds"] = time.perf_counter() - t0
    return stats


def part_work(loaded, sizes, ks, examples) -> None:
    rows = []
    for n, k in [(n, ks[0]) for n in sizes] if len(ks) == 1 else [(sizes[0], k) for k in ks]:
        s = evaluate(loaded, n, k, examples)
        rows.append((n, k, s))
        print(f"  {n:5d} examples x k = {k:2d}: {s['seconds']:7.1f} s (scoring {s['score_seconds']:5.1f} s, "
              f"{s['target_tokens']:,} target tokens; sampling {s['sample_seconds']:6.1f} s, "
              f"{s['sampled_tokens']:,} tokens, {s['sampled_tokens'] / s['sample_seconds']:,.0f} tok/s); "
              f"{1e3 * s['seconds'] / (n * k):.2f} ms per sample", flush=True)
    work = [n * k for n, k, _ in rows]
    secs = [s["seconds"] for _, _, s in rows]
    a, b, r2 = linear_fit(work, secs)
    print(f"  line over samples drawn: {a:.2f} s + {1e3 * b:.2f} ms x samples, R^2 = {r2:.4f}")
    toks = [s["sampled_tokens"] for _, _, s in rows]
    a, b, r2 = linear_fit(toks, [s["sample_seconds"] for _, _, s in rows])
    print(f"  sampling time over tokens sampled: {a:.2f} s + {1e6 * b:.1f} us x tokens, R^2 = {r2:.4f}")


# ------------------------------------------------------------------------------------------------ driver overhead
def _register_noop() -> None:
    """Runs in every Ray worker as it starts (and in this driver): a job kind that does nothing."""
    import premem.jobs.runners

    premem.jobs.runners.RUNNERS["noop"] = lambda job, store, progress: {"noop": True}


def _noop_jobs(n: int, chain: bool, tag: str):
    from premem.plan.build import Job

    jobs = []
    for i in range(n):
        jid = hashlib.sha256(f"noop-{tag}-{i}".encode()).hexdigest()
        deps = (jobs[-1].id,) if chain and jobs else ()
        jobs.append(Job(jid, "noop", f"noop {tag} {i}", {"i": i}, deps, resources={"cpus": 1}))
    return jobs


def part_overhead(n: int) -> None:
    import ray

    from premem.jobs.schedule import Display, run_plan
    from premem.plan.build import Plan
    from premem.spec.load import load_spec
    from premem.store import Store

    spec = load_spec(ROOT / "specs" / "smoke.yaml")
    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             object_store_memory=256 * 1024 * 1024, runtime_env={"worker_process_setup_hook": _register_noop})
    print(f"  Ray started in {time.perf_counter() - t0:.1f} s (once per `premem apply`)")
    quiet = open(os.devnull, "w")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / ".premem")
            # a first plan warms the worker pool, as the first jobs of a real apply do
            run_plan(Plan(spec, [], _noop_jobs(4, False, "warm")), store, display=Display(4, stream=quiet))
            for chain in (True, False):
                jobs = _noop_jobs(n, chain, f"chain{chain}")
                t = time.perf_counter()
                out = run_plan(Plan(spec, [], jobs), store, display=Display(n, stream=quiet))
                dt = time.perf_counter() - t
                assert len(out.done) == n, out
                what = "chain of dependent jobs" if chain else "independent jobs"
                print(f"  {n} no-op {what}: {dt:.2f} s, {1e3 * dt / n:.1f} ms per job", flush=True)
            rec = store.records()
            assert sum(1 for r in rec.values() if r.status == "done") == 2 * n + 4
    finally:
        ray.shutdown()
        quiet.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", action="append", choices=["examples", "k", "overhead"])
    ap.add_argument("--sizes", default="256,1024,4096")
    ap.add_argument("--ks", default="1,2,4,8,16")
    ap.add_argument("--jobs", type=int, default=100, help="no-op jobs per overhead measurement")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", default=str(DEFAULT_CACHE))
    args = ap.parse_args()
    parts = args.part or ["examples", "k", "overhead"]
    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    print(f"{datetime.date.today()} {platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({args.threads} thread{'s' if args.threads > 1 else ''}); {' '.join(sys.argv)}")
    sizes = [int(x) for x in args.sizes.split(",")]
    ks = [int(x) for x in args.ks.split(",")]
    if "examples" in parts or "k" in parts:
        from premem.data.synthetic import ArithmeticTask

        loaded = pretrained_tiny(Path(args.cache))
        examples = ArithmeticTask(**TASK).split("train", max(sizes))
        if "examples" in parts:
            print(f"evaluation time against train examples (k = 4): {sizes}")
            part_work(loaded, sizes, [4], examples)
        if "k" in parts:
            print(f"evaluation time against k ({sizes[0]} examples): {ks}")
            part_work(loaded, [sizes[0]], ks, examples)
    if "overhead" in parts:
        print(f"driver overhead per job (run_plan: Ray task + store), {args.jobs} jobs")
        part_overhead(args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
