"""The smoke study on a GPU: pretraining, finetuning (bf16 weights) and evaluation on CUDA, in-process.

    python bench/gpu_smoke.py [--spec specs/smoke.yaml] [--dtype bfloat16] [--workdir DIR]

Runs every job of the spec in this process (no Ray: the point is the CUDA code path and its speed, not
scheduling), with `device: cuda`, and prints per kind of job: wall time, training tokens/s, target tokens
scored/s, sampled tokens/s, and the peak GPU memory. Exits 2 when no GPU is visible.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "specs" / "smoke.yaml"))
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--workdir", default="/tmp/premem-gpu-smoke")
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("no GPU visible: nothing to measure")
        return 2
    from premem.jobs.runners import execute
    from premem.plan.build import build_plan
    from premem.spec.load import parse_spec
    from premem.store import Store

    data = yaml.safe_load(Path(args.spec).read_text())
    data["device"] = "cuda"
    data["resources"] = {kind: {"cpus": 1, "gpus": 1} for kind in ("pretrain", "train", "evaluate")}
    data["store"] = str(Path(args.workdir) / ".premem")
    for m in data["models"]:
        m["dtype"] = args.dtype
    data.setdefault("evaluation", {})["sampling_dtype"] = None  # sample in the weights' own dtype
    spec = parse_spec(yaml.safe_dump(data), "gpu-smoke")
    shutil.rmtree(args.workdir, ignore_errors=True)
    store = Store(spec.store)
    plan = build_plan(spec)
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; dtype {args.dtype}; "
          f"{len(plan.runs)} runs, {len(plan.jobs) - 1} jobs")
    torch.cuda.reset_peak_memory_stats()
    totals: dict[str, dict] = {}
    for job in plan.jobs:
        if job.kind == "analysis":
            continue
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = execute(job, str(store.root), lambda _line: None)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        examples = result.pop("_examples", None)
        store.record(job, "done", result=result, examples=examples, started=t0)
        agg = totals.setdefault(job.kind, {"jobs": 0, "seconds": 0.0, "tokens": 0, "target_tokens": 0,
                                           "sampled_tokens": 0, "score_seconds": 0.0, "sample_seconds": 0.0,
                                           "train_seconds": 0.0})
        agg["jobs"] += 1
        agg["seconds"] += dt
        agg["tokens"] += result.get("tokens", 0)
        agg["train_seconds"] += result.get("seconds", 0.0) if job.kind != "evaluate" else 0.0
        for k in ("target_tokens", "sampled_tokens", "score_seconds", "sample_seconds"):
            agg[k] += result.get(k, 0)
        if job.kind == "evaluate":
            print(f"  {job.label}: train acc {result['train_acc']:.3f} test acc {result['test_acc']:.3f} "
                  f"target NLL {result['train_nll']:.3f}")
    for kind, a in totals.items():
        line = f"{kind:9s} {a['jobs']:3d} jobs {a['seconds']:7.1f} s"
        if a["tokens"] and a["train_seconds"]:
            line += f"  training {a['tokens'] / a['train_seconds']:,.0f} tokens/s"
        if a["target_tokens"]:
            line += f"  scoring {a['target_tokens'] / max(a['score_seconds'], 1e-9):,.0f} target tokens/s"
        if a["sampled_tokens"]:
            line += f"  sampling {a['sampled_tokens'] / max(a['sample_seconds'], 1e-9):,.0f} tokens/s"
        print(line)
    print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
