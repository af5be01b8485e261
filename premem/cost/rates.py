"""Throughputs per model, premem's and the authors' (`Rates`): from the throughputs file, else the CPU figures
measured in this project for built-in models (`CPU_BUILTIN`); and a job's seconds from its work (`job_seconds`)."""
from __future__ import annotations

from dataclasses import dataclass

from premem.cost.throughputs import CostError, ThroughputsFile
from premem.cost.work import KINDS, Work, kind_uses_gpu
from premem.engine.hardware import resolve_sampling_dtype


# Measured on this project's development machine (2 vCPUs, Intel Xeon with AVX-512/AMX-BF16, torch 2.13.0+cpu),
# the built-in model at the quickstart's size (4 layers, hidden 128, 1.08M parameters), 1 torch thread unless
# said otherwise. They apply only to built-in models on jobs that ask for no GPU.
CPU_BUILTIN = {
    # bench/README.md, 2026-11-27, `python bench/eval_throughput.py` (3 repetitions, medians, 1 thread):
    # target_nll 13,078 target tokens/s against 8,836 for one float32 forward pass per example;
    # premem's sampler 4,900 tokens/s (float32) and 8,940 (bfloat16 weights) against 697 for model.generate
    # prompt by prompt (float32).
    "score_tokens_per_s": 13_078.0,
    "sample_tokens_per_s": 4_900.0,
    "sample_tokens_per_s_bf16": 8_940.0,
    "authors_score_tokens_per_s": 8_836.0,
    "authors_sample_tokens_per_s": 697.0,
    # bench/README.md, "The study's cost" (2026-11-27): the job records (tokens, seconds) of the quickstart
    # store behind its `evaluation.skip_settled` section (`premem apply base.yaml`, a copy of
    # specs/quickstart.yaml): 46 finetuning epochs, 778,880 tokens in 162.8 s of training (4,785 tokens/s,
    # 1 thread each, two jobs sharing the 2 cores); pretraining 3,029,248 tokens in 244.7 s (12,382 tokens/s,
    # 2 threads); 138 evaluations spent 20.6 s outside scoring and sampling (0.15 s each: the model load,
    # grading and bookkeeping).
    "train_tokens_per_s": 4_785.0,
    "pretrain_tokens_per_s": 12_382.0,
    "load_seconds": 0.15,
}


@dataclass(frozen=True)
class Rates:
    train: float
    pretrain: float
    sample: float
    score: float
    load: float


@dataclass
class ModelRatesResolved:
    premem: Rates
    authors: Rates
    origin: str  # where the figures came from, for the assumptions list



def resolve_rates(spec, tp: ThroughputsFile, file: str | None) -> dict[str, ModelRatesResolved]:
    """Per model of the spec: premem's and the authors' rates, from the file (the model's entry by name or hub
    id, then `defaults`), else the CPU defaults for a built-in model whose jobs ask for no GPU."""
    out, missing = {}, []
    for m in spec.models:
        entries = [e for e in (tp.models.get(m.name), tp.models.get(m.hf) if m.hf else None, tp.defaults)
                   if e is not None]
        cpu_ok = m.builtin is not None and not any(kind_uses_gpu(spec, k) for k in KINDS)
        # `auto` as it would resolve on this machine's CPU (the built-in CPU rates are for CPU jobs)
        sampling_dtype = resolve_sampling_dtype(spec.evaluation.sampling_dtype, "cpu")[0]
        bf16 = sampling_dtype == "bfloat16" or (sampling_dtype is None and m.dtype == "bfloat16")
        cpu = dict(CPU_BUILTIN, sample_tokens_per_s=CPU_BUILTIN["sample_tokens_per_s_bf16" if bf16 else
                                                               "sample_tokens_per_s"]) if cpu_ok else {}

        def pick(fname: str, entries=entries, cpu=cpu):
            for e in entries:
                v = getattr(e, fname)
                if v is not None:
                    return v, "file"
            return cpu.get(fname), ("measured CPU default" if fname in cpu else None)

        vals, origins = {}, set()
        for f in ("train_tokens_per_s", "sample_tokens_per_s", "score_tokens_per_s", "load_seconds"):
            v, o = pick(f)
            if v is None:
                missing.append(f"model {m.name!r}: no {f}" + (" (its jobs ask for GPUs)" if not cpu_ok and
                                                                m.builtin else ""))
            vals[f], origins = v, origins | {o}
        pre, _ = pick("pretrain_tokens_per_s")
        vals["pretrain_tokens_per_s"] = pre or vals["train_tokens_per_s"]
        if any(v is None for v in vals.values()):
            continue
        premem = Rates(vals["train_tokens_per_s"], vals["pretrain_tokens_per_s"], vals["sample_tokens_per_s"],
                       vals["score_tokens_per_s"], vals["load_seconds"])
        authors_entries = [e.authors for e in entries if e.authors is not None]

        def authors(q: str, base: float, default: float | None):
            for e in authors_entries:
                if getattr(e, f"{q}_tokens_per_s") is not None:
                    return getattr(e, f"{q}_tokens_per_s")
                if getattr(e, f"{q}_speedup") is not None:
                    return base / getattr(e, f"{q}_speedup")
            return default

        a_sample = authors("sample", premem.sample, cpu.get("authors_sample_tokens_per_s"))
        a_score = authors("score", premem.score, cpu.get("authors_score_tokens_per_s"))
        for q, v in (("sample", a_sample), ("score", a_score)):
            if v is None:
                missing.append(f"model {m.name!r}: no authors' {q} rate (authors.{q}_tokens_per_s or "
                               f"authors.{q}_speedup)")
        if a_sample is None or a_score is None:
            continue
        a_load = next((e.load_seconds for e in authors_entries if e.load_seconds is not None), premem.load)
        a_train = authors("train", premem.train, premem.train)
        a_pre = next((e.pretrain_tokens_per_s for e in authors_entries if e.pretrain_tokens_per_s is not None),
                     premem.pretrain)
        origin = " and ".join(sorted(o for o in origins if o)) or "file"
        out[m.name] = ModelRatesResolved(premem, Rates(a_train, a_pre, a_sample, a_score, a_load), origin)
    if missing:
        where = file or "a throughputs file"
        raise CostError([f"{msg}: give it in {where} under models.<name> or defaults" for msg in missing] +
                        ["(CPU defaults exist only for built-in models whose jobs ask for no GPU; see "
                         "premem/cost/throughputs-example.yaml for the fields)"])
    return out


def job_seconds(w: Work, r: Rates, authors: bool, premem_load: float | None = None) -> float:
    """Seconds of a job with rates `r` (`authors`: its load count; a job outside evaluation loads as premem
    does, `premem_load` seconds)."""
    train_rate = r.pretrain if w.pretrain else r.train
    load = r.load if not authors or w.evaluation or premem_load is None else premem_load
    return ((w.authors_loads if authors else w.loads) * load + w.trained / train_rate + w.scored / r.score
            + w.sampled / r.sample)
