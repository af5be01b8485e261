"""A realistic summary with every section of the report present, for the page tests and the browser test.

Six runs of a learning-rate x epochs grid (one failed before its first checkpoint, one diverged), names with
characters that need escaping and a slug, training-loss curves, sample outputs in the built-in task's
``#### answer`` format, the four classic measures, robustness under two preambles, and a data-curation study
(:func:`curation_section`: four strategies, four rounds, one model unfinished).  Deterministic (a seeded
``random.Random``), with a few missing values (None, NaN) where real studies have them.
"""

from __future__ import annotations

import math
import random

from premem.data.curate import default_targets, efficiency

BINS = ["0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0"]

RUNS = [
    # name, learning rate, epochs, status
    ("lr1e-4-ep3", 1e-4, 3, "done"),
    ("lr3e-4-ep3", 3e-4, 3, "done"),
    ("lr1e-3-ep6", 1e-3, 6, "done"),
    ("lr=3e-3 / <frac 0.5> & ep6", 3e-3, 6, "done"),
    ("lr1e-2-ep6", 1e-2, 6, "diverged"),
    ("lr3e-2-ep3", 3e-2, 3, "failed"),
]


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def _problem(rng: random.Random, k: int) -> tuple[str, str, int]:
    a, b, c = rng.randint(2, 40), rng.randint(2, 9), rng.randint(1, 30)
    q = f"Ada has {a} apples. She buys {b} bags with {c} apples each. How many apples does she have now?"
    ans = a + b * c
    target = f"{b} bags of {c} apples is {b} * {c} = {b * c}.\n{a} + {b * c} = {ans}.\n#### {ans}\nDone."
    return q, target, ans


def full_summary(seed: int = 0) -> dict:
    rng = random.Random(seed)
    runs = []
    for k, (name, lr, epochs, status) in enumerate(RUNS):
        speed = math.log10(lr / 1e-5)  # 1 .. 3.5: faster memorization at higher learning rates
        cps = []
        n_cp = 0 if status == "failed" else (2 if status == "diverged" else epochs)
        for e in range(1, n_cp + 1):
            train = _clip(0.25 + 0.11 * speed * e ** 0.8 + rng.uniform(-0.02, 0.02))
            mem = _clip(0.04 * speed * e)
            test = _clip(0.22 + 0.05 * math.log1p(e) + 0.03 * speed - 0.02 * speed * mem * e + rng.uniform(-0.02, 0.02))
            premem = _clip(test + rng.uniform(-0.04, 0.04))
            atc = _clip(test + rng.uniform(-0.08, 0.08))
            cps.append({
                "epoch": e, "train_acc": train, "test_acc": test, "premem_acc": premem,
                "train_nll": 1.2 / (1 + 0.3 * speed * e), "memorized_frac": mem, "train_loss": 1.1 / (1 + 0.35 * speed * e),
                "gap": train - test, "premem_gap": train - premem,
                "gradient_variance": 2.5e-6 * (1 + 0.4 * e) * (1 + rng.uniform(-0.3, 0.3)),
                "weight_distance": 0.8 * speed * e * (1 + rng.uniform(-0.1, 0.1)),
                "atc_acc": atc, "atc_gap": train - atc,
            })
        if k == 1 and cps:
            cps[1]["gradient_variance"] = None  # a measure that failed at one checkpoint
            cps[2]["premem_acc"] = float("nan")
        run = {
            "id": name, "name": name, "status": status,
            "settings": {"model": "tiny", "dataset": "arithmetic", "learning_rate": lr, "epochs": epochs,
                         "dataset_fraction": 0.5 if "frac 0.5" in name else 1.0, "batch_size": 16},
            "error": None, "checkpoints": cps,
        }
        if status == "failed":
            run["error"] = ("train epoch 1: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
                            "  File \"premem/engine/train.py\", line 88, in step\n    loss.backward()")
        if status == "diverged":
            run["diverged_step"] = 137
            run["error"] = "loss is NaN at step 137 (epoch 3)"
        steps = 0 if status == "failed" else (137 if status == "diverged" else 60 * epochs)
        curve = []
        for s in range(0, steps + 1 if steps else 0, max(1, steps // 80)):
            base = 2.2 * math.exp(-s / (25 + 10 * k)) + 0.35 / (1 + 0.002 * speed * s)
            curve.append({"step": s, "epoch": 1 + s // 60, "loss": base + rng.uniform(-0.04, 0.04)})
        if status == "diverged" and curve:
            curve[-3:] = [{"step": c["step"], "epoch": c["epoch"], "loss": 4.0 + 3 * i} for i, c in enumerate(curve[-3:])]
            curve.append({"step": 137, "epoch": 3, "loss": float("nan")})
        if curve:
            run["loss_curve"] = curve
        if cps:
            examples = []
            for i in range(6):
                q, target, ans = _problem(rng, i)
                memorized = i % 3 == 0
                acc = [1.0, 0.75, 0.5, 0.25, 0.0, 1.0][i]
                samples = []
                for j in range(3):
                    if j < round(acc * 3):
                        samples.append(target if memorized else target.replace(" is ", " makes ", 1))
                    elif j == 2 and i == 4:
                        samples.append("Ada buys some bags of apples and then she")  # no final answer
                    else:
                        samples.append(target.replace(f"#### {ans}", f"#### {ans + 1 + j}"))
                examples.append({
                    "example_id": f"train-{i:05d}", "question": q, "target": target, "samples": samples,
                    "acc": acc, "nll": 0.2 if memorized else 0.45, "perplexity": math.exp(0.2 if memorized else 0.45),
                    "memorized": memorized, "premem_acc": 0.0 if memorized and i else acc,
                })
            examples[2]["perplexity"] = None
            examples[5]["question"] = "What is <b>2 & 3</b>?\n(a markup test)"
            run["samples"] = {"epoch": cps[-1]["epoch"], "p": -1.2, "examples": examples}
        runs.append(run)

    used = [r["name"] for r in runs if r["status"] != "failed"]
    baselines = {
        "premem": {"label": "PreMemAcc", "value_key": "premem_gap", "x_label": "train acc − PreMemAcc",
                   "pearson_gap": 0.912, "kendall_gap": 0.781, "pearson_test": -0.874, "kendall_test": -0.702, "n": 20},
        "gradient_variance": {"label": "Gradient variance", "value_key": "gradient_variance",
                              "x_label": "gradient variance", "pearson_gap": 0.214, "kendall_gap": 0.12,
                              "pearson_test": None, "kendall_test": float("nan"), "n": 19},
        "weight_distance": {"label": "Distance from initialization", "value_key": "weight_distance",
                            "x_label": "squared distance to base weights", "pearson_gap": 0.55, "kendall_gap": 0.41,
                            "pearson_test": -0.33, "kendall_test": -0.25, "n": 20},
        "atc": {"label": "ATC", "value_key": "atc_gap", "x_label": "train acc − ATC acc", "pearson_gap": 0.62,
                "kendall_gap": 0.47, "pearson_test": -0.58, "kendall_test": -0.44, "n": 20},
    }
    robustness = {}
    preambles = {"original": "", "First,": "\nAnswer: First,", "We know that": "\nAnswer: We know that"}
    for pi, prompt in enumerate(preambles):
        robustness[prompt] = {}
        for bi, b in enumerate(BINS):
            n = [7, 11, 16, 9, 22][bi] if not (prompt == "We know that" and bi == 0) else 0
            values = [round(_clip(0.15 + 0.18 * bi - 0.12 * pi * (1 - bi / 4) + rng.gauss(0, 0.2)) * 10) / 10
                      for _ in range(n)]
            vs = sorted(values)
            q = (lambda p: vs[round(p * (len(vs) - 1))]) if vs else (lambda p: None)
            robustness[prompt][b] = {"n": n, "mean": sum(vs) / n if n else None, "median": q(0.5), "q1": q(0.25),
                                     "q3": q(0.75), "values": values}
    return {
        "spec": {"name": "grid study <demo>", "path": "specs/demo.yaml",
                 "text": "name: grid study <demo>\nmetrics: {gradient_variance: {}, weight_distance: {}, atc: {}}\n"},
        "generated_at": "2026-11-27T12:00:00",
        "premem": {"p": -1.2, "r2": 0.83, "r2_line": 0.86, "calibration_runs": used[:3],
                   "calibration": [{"p": p / 10, "r2": 0.83 - ((p / 10) + 1.2) ** 2, "r2_line": 0.86 - ((p / 10) + 1.1) ** 2}
                                   for p in range(-30, 1)]},
        "train_acc": {"r2": -0.41, "r2_line": 0.35},
        "test_acc_range": [0.2, 0.5],
        "checkpoints": sum(len(r["checkpoints"]) for r in runs),
        "notes": ["1 of 6 runs diverged and 1 failed; figures use finished checkpoints only."],
        "perplexity_gap": {"memorized_correct_median_perplexity": 1.22, "unmemorized_correct_median_perplexity": 1.61,
                           "threshold_perplexity": math.exp(math.exp(-1.2)), "irreducible_perplexity": 1.44},
        "runs": runs,
        "baselines": baselines,
        "baselines_meta": {"runs": used, "atc_reference": {"run": used[2], "epoch": 6, "test_acc": 0.41,
                                                           "threshold": -0.0831, "score": "mean log-likelihood"}},
        "robustness": robustness,
        "robustness_meta": {"preambles": preambles,
                            "checkpoints": [{"run": r["name"], "epoch": len(r["checkpoints"])} for r in runs
                                            if r["status"] == "done"],
                            "samples": 10, "bins": BINS},
        "curation": curation_section(),
    }


#: test accuracy gained per 100 new examples, by strategy (premem learns fastest, as in the paper's Fig. 8)
CURATION_SPEED = {"premem": 0.05, "iid": 0.025, "ifd": 0.035, "heuristic": 0.02}


def curation_section(seed: int = 2, rounds: int = 4, originals: int = 200, new: int = 100) -> dict:
    """summary["curation"] as premem.analysis.curation.curation_summary writes it: round 0 on `originals`
    examples, then `rounds` rounds of `new` examples per strategy; heuristic's last model is still training
    (status incomplete, no test accuracy); premem's third round fell back to the lowest PreMemAcc (a note) and
    ifd's fourth ran out of variants of three originals. Sample efficiency from premem.data.curate's own functions."""
    rng = random.Random(seed)
    strategies = list(CURATION_SPEED)
    base = 0.31
    out: dict = {"settings": {"model": "tiny", "dataset": "arithmetic", "rounds": rounds, "threshold": 0.75,
                              "p": -1.2, "new_examples": [new] * rounds, "learning_rate": 2e-5, "epochs": 3,
                              "source": "variants",
                              "ifd": {"split": "test", "epochs": 2, "learning_rate": None, "percent": 50.0},
                              "heuristic": {"percent": 50.0}},
                 "strategies": strategies, "originals": originals}
    r0 = {"round": 0, "size": originals, "test_acc": base, "run": "curation/round0", "status": "done"}
    for s in strategies:
        curve, recs = [dict(r0)], []
        for r in range(1, rounds + 1):
            acc = round(_clip(base + CURATION_SPEED[s] * r * (1 - 0.08 * r) + rng.uniform(-0.004, 0.004)), 4)
            point = {"round": r, "size": originals + new * r, "test_acc": acc, "run": f"curation/{s}/round{r}",
                     "status": "done"}
            if s == "heuristic" and r == rounds:
                point |= {"test_acc": None, "status": "incomplete"}
            curve.append(point)
            chosen = {"premem": 120 - 25 * r, "iid": originals, "ifd": originals // 2, "heuristic": originals // 2}[s]
            rec = {"round": r, "chosen": chosen, "drawn_from": min(chosen, new), "new": new, "collected": new * r,
                   "exhausted": [], "note": None, "premem_mean": None}
            if s == "premem":
                rec["premem_mean"] = round(0.55 + 0.08 * r, 4)
                if r == 3:
                    rec["note"] = "no original has PreMemAcc <= 0.75: the 45 with the lowest instead"
            if s == "ifd" and r == rounds:
                rec["exhausted"] = ["train-00017", "train-00042", "train-00101"]
            recs.append(rec)
        out[s] = {"curve": curve, "rounds": recs}
    iid = [(p["size"], p["test_acc"]) for p in out["iid"]["curve"] if p["test_acc"] is not None]
    for s in strategies:
        if s == "iid":
            continue
        other = [(p["size"], p["test_acc"]) for p in out[s]["curve"] if p["test_acc"] is not None]
        eff = efficiency(iid, other, default_targets(base, iid, other))
        ratios = [e["ratio"] for e in eff if e["ratio"] is not None]
        out[s] |= {"efficiency": eff, "targets_note": None,
                   "mean_ratio": sum(ratios) / len(ratios) if ratios else None}
    return out


def full_dynamics(summary: dict, seed: int = 1) -> dict:
    rng = random.Random(seed)
    out = {}
    for run in summary["runs"]:
        cps = run["checkpoints"]
        if not cps:
            continue
        n_ex = 96
        cats = []
        for i in range(n_ex):
            learn = rng.randint(1, len(cps) + 2)
            mem = rng.randint(2, len(cps) + 4)
            row = []
            for e in range(1, len(cps) + 1):
                c = int(e >= learn) + 2 * int(e >= mem)
                row.append(None if (i == 5 and e == 1) else c)
            cats.append(row)
        out[run["id"]] = {"epochs": [c["epoch"] for c in cps], "example_ids": [f"train-{i:05d}" for i in range(n_ex)],
                          "categories": cats}
    return out


#: summary["intervals"] of the "with intervals" variant
INTERVALS = {"level": 0.95, "resamples": 1000, "seed": 0, "method": "percentile bootstrap",
             "resampled": "runs (each R² refitted on runs drawn with replacement); examples within a checkpoint",
             "measures_note": "r and τ refitted on checkpoints drawn with replacement, runs kept whole."}


def _ci(rng: random.Random, v, width: float, lo: float | None = 0.0, hi: float | None = 1.0) -> list:
    """A made-up interval around ``v`` (uneven on each side, clipped to [lo, hi]); [None, None] without ``v``."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return [None, None]
    a, b = v - width * rng.uniform(0.5, 1.5), v + width * rng.uniform(0.5, 1.5)
    if lo is not None:
        a = max(lo, a)
    if hi is not None:
        b = min(hi, b)
    return [round(a, 4), round(b, 4)]


def full_summary_with_intervals(seed: int = 0) -> dict:
    """:func:`full_summary` plus what the bootstrap adds to summary.json (issue 15): ``intervals``, a ``<key>_ci``
    beside every headline number (R², p, each checkpoint's accuracies, the measures' correlations, the
    robustness bins' means, the curation's test accuracies and efficiency ratios) and leave-one-run-out fits;
    plus two (model, dataset) blocks with their own intervals and leave-one-run-out fits."""
    s = full_summary(seed)
    rng = random.Random(seed + 100)
    s["intervals"] = dict(INTERVALS)
    pm, tr = s["premem"], s["train_acc"]
    pm |= {"p_ci": [-1.4, -1.05], "r2_ci": [0.781, 0.902], "r2_line_ci": [0.8, 0.91]}
    tr |= {"r2_ci": [-0.9, -0.05], "r2_line_ci": [0.12, 0.55]}
    done = [r for r in s["runs"] if r["checkpoints"]]
    pm["loro"] = {"min_r2": 0.54, "run": done[2]["name"],
                  "r2_by_run": {r["name"]: (0.54 if k == 2 else round(0.8 + 0.01 * k, 3)) for k, r in enumerate(done)}}
    for r in s["runs"]:
        for c in r["checkpoints"]:
            for key in ("train_acc", "test_acc", "premem_acc"):
                c[key + "_ci"] = _ci(rng, c[key], 0.04)
    for b in s["baselines"].values():
        for key in ("pearson_gap", "kendall_gap", "pearson_test", "kendall_test"):
            b[key + "_ci"] = _ci(rng, b[key], 0.1, -1.0, 1.0)
    for bins in s["robustness"].values():
        for st in bins.values():
            st["mean_ci"] = _ci(rng, st["mean"], 0.06)
    cur = s["curation"]
    for name in cur["strategies"]:
        e = cur[name]
        for p in e["curve"]:
            p["test_acc_ci"] = _ci(rng, p["test_acc"], 0.015)
        for x in e.get("efficiency", []):
            x["ratio_ci"] = _ci(rng, x["ratio"], 0.3, 0.0, None)
        if "mean_ratio" in e:
            e["mean_ratio_ci"] = _ci(rng, e["mean_ratio"], 0.3, 0.0, None)
    blocks = []
    for k, (dataset, runs) in enumerate((("arithmetic", done[:2]), ("arithmetic-hard", done[2:]))):
        names = [r["name"] for r in runs]
        blocks.append({
            "model": "tiny", "dataset": dataset, "p": -1.2 - 0.1 * k, "p_ci": [-1.5, -1.0],
            "r2": 0.8 - 0.1 * k, "r2_ci": [0.7 - 0.1 * k, 0.9 - 0.1 * k], "r2_line": 0.85, "r2_line_ci": [0.75, 0.93],
            "train_acc": {"r2": -0.3, "r2_ci": [-0.7, 0.1], "r2_line": 0.3, "r2_line_ci": [0.1, 0.5]},
            "calibration": pm["calibration"], "calibration_runs": names[:1],
            "checkpoints": sum(len(r["checkpoints"]) for r in runs), "test_acc_range": [0.2, 0.5], "runs": names,
            "loro": {"min_r2": 0.61 - 0.1 * k, "run": names[-1], "r2_by_run": {n: 0.61 - 0.1 * k for n in names}},
        })
    s["blocks"] = blocks
    return s
