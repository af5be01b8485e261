"""The report's comparative figures from stored results: the classic measures against the generalization gap
(the paper's Fig. 5) and per-example robustness under perturbed prompts by PreMemAcc bin (its Fig. 7).

Both read the results of `measure` and `perturb` jobs and add to a summary that `premem.analysis` built
(the checkpoints' train/test accuracy and PreMemAcc, and the calibrated p). Nothing here needs a model.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from premem.analysis_results import RunData, block_label, block_of, finite_or_none
from premem.intervals import Bootstrap, correlation_cis, mean_ci
from premem.metrics.baselines import atc_accuracy, atc_reproduction_bound, atc_threshold, correlations
from premem.metrics.premem import premem_acc
from premem.plan import Plan
from premem.spec_runs import atc_reference, match_runs
from premem.store import Store

BINS = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0))

#: name -> (label, checkpoint key plotted against the gap, axis label); PreMemAcc and ATC predict an accuracy,
#: so the gap they predict is train accuracy minus that accuracy
MEASURES = {
    "premem": ("PreMemAcc", "premem_gap", "train acc − PreMemAcc"),
    "gradient_variance": ("Gradient variance", "gradient_variance", "gradient variance (mean over parameters)"),
    "weight_distance": ("Distance from initialization", "weight_distance", "Σ (θ − θ₀)²"),
    "atc": ("ATC", "atc_gap", "train acc − ATC-predicted acc"),
}
#: the checkpoint key (and axis label) each measure is compared with test accuracy by: PreMemAcc and ATC as the
#: accuracy they predict, the others as they are
TEST_KEYS = {"premem": ("premem_acc", "PreMemAcc"), "gradient_variance": ("gradient_variance", MEASURES[
    "gradient_variance"][2]), "weight_distance": ("weight_distance", MEASURES["weight_distance"][2]),
             "atc": ("atc_acc", "ATC-predicted accuracy")}


def bin_label(lo: float, hi: float) -> str:
    """A bin as the report and summary.json name it: '0.0-0.2'; the bin of PreMemAcc = 1.0 alone is '1.0'."""
    return f"{lo:.1f}" if lo == hi else f"{lo:.1f}-{hi:.1f}"


def bins_for(perfect_bin: bool) -> tuple[tuple[float, float], ...]:
    """The PreMemAcc bins of the robustness figure: five of width 0.2, the last closed ([0.8, 1.0]); with
    `perfect_bin`, six: [0.8, 1.0) and PreMemAcc = 1.0 on its own (the authors' GSM8K panel of Fig. 7)."""
    return BINS[:-1] + ((0.8, 1.0), (1.0, 1.0)) if perfect_bin else BINS


def bin_of(value: float, perfect_bin: bool = False) -> int:
    """Index in bins_for(perfect_bin) of a PreMemAcc value: [0, 0.2), [0.2, 0.4), ..., [0.8, 1.0] (the last bin
    closed), or with `perfect_bin` ..., [0.8, 1.0), {1.0}."""
    if perfect_bin and value >= 1.0:
        return len(BINS)
    return min(int(value / 0.2 + 1e-9), len(BINS) - 1)


def _checkpoint_index(summary: dict) -> dict[tuple[str, int], dict]:
    return {(r["name"], c["epoch"]): c for r in summary["runs"] for c in r.get("checkpoints", [])}


def _atc_scores(rows: list[dict], score: str) -> np.ndarray:
    """Per train prompt, the likelihood of its greedy sample: mean log-probability per token (token_mean) or
    total (sequence). An empty sample has no likelihood: it scores below every other."""
    out = []
    for r in sorted(rows, key=lambda r: str(r["example_id"])):
        nll, n = r["nll"], r["n_target_tokens"] or 0
        if nll is None or not n or not math.isfinite(nll):
            out.append(-math.inf)
        else:
            out.append(-nll if score == "token_mean" else -nll * n)
    return np.array(out)


def add_baselines(plan: Plan, store: Store, summary: dict, boot: Bootstrap | None = None) -> None:
    """Put each classic measure on its checkpoints (summary['runs'][i]['checkpoints']) and their correlations
    with the generalization gap and with test accuracy under summary['baselines'] (and 'baselines_meta').

    Every checkpoint gets 'gap' = train acc - test acc (and 'premem_gap' where PreMemAcc is known), whether or
    not the spec asks for classic measures. Only finished measure jobs count; a missing one leaves its value out.
    With `boot` (premem.intervals.bootstrap), each correlation gets its interval ('pearson_gap_ci', ...): the
    gap, test accuracy and PreMemAcc resampled, the classic measures' own values held fixed.
    """
    spec = plan.spec
    cps = _checkpoint_index(summary)
    for c in cps.values():
        tr, te, pm = c.get("train_acc"), c.get("test_acc"), c.get("premem_acc")
        c["gap"] = tr - te if tr is not None and te is not None else None
        c["premem_gap"] = tr - pm if tr is not None and pm is not None else None
    enabled = spec.metrics.enabled()
    if not enabled:
        return
    finished, records = store.done_jobs([j for j in plan.jobs if j.kind == "measure"])
    done = {j.id: j for j in finished}
    for j in done.values():
        name, c = j.settings["measure"], cps.get((j.run, j.epoch))
        if c is not None and name != "atc":
            c[name] = finite_or_none(records[j.id].result.get("value"))
    # the ATC reference run is measured whatever metrics.runs says, but enters the figures only if chosen
    meta: dict = {"runs": [r.name for r in match_runs(plan.runs, spec.metrics.runs)], "atc_reference": None}
    if "atc" in enabled:
        meta["atc_reference"] = _add_atc(plan, store, done, cps)
    chosen = set(meta["runs"])
    keys = [k for k in cps if k[0] in chosen]
    points = [cps[k] for k in keys]
    baselines = {}
    for name in ["premem", *enabled]:
        label, key, x_label = MEASURES[name]
        gap = correlations([c.get(key) for c in points], [c.get("gap") for c in points])
        test_key, test_label = TEST_KEYS[name]
        test = correlations([c.get(test_key) for c in points], [c.get("test_acc") for c in points])
        baselines[name] = {"label": label, "value_key": key, "x_label": x_label, "test_key": test_key,
                           "test_x_label": test_label,
                           "pearson_gap": gap["pearson"], "kendall_gap": gap["kendall"],
                           "pearson_test": test["pearson"], "kendall_test": test["kendall"], "n": gap["n"]}
        if boot is not None:
            _add_correlation_cis(baselines[name], name, keys, points, boot)
    summary["baselines"] = baselines
    summary["baselines_meta"] = meta


def _resampled(key: str, c: dict, arrays: dict[str, np.ndarray] | None, rows: int) -> np.ndarray:
    """A checkpoint's value of `key` in every resample (row 0 the estimate): what the bootstrap resamples
    (train and test accuracy, PreMemAcc and the gaps made of them) from it, anything else fixed; NaN if unknown."""
    if arrays is not None and key in ("gap", "premem_gap", "premem_acc", "test_acc", "atc_gap"):
        if key == "gap":
            return arrays["train"] - arrays["test"]
        if key == "premem_gap":
            return arrays["train"] - arrays["premem"]
        if key == "premem_acc":
            return arrays["premem"]
        if key == "test_acc":
            return arrays["test"]
        if c.get("atc_acc") is not None:  # atc_gap: train accuracy resampled, ATC's prediction fixed
            return arrays["train"] - c["atc_acc"]
    v = c.get(key)
    return np.full(rows, np.nan if v is None else float(v))


def _add_correlation_cis(entry: dict, name: str, keys: list, points: list[dict], boot: Bootstrap) -> None:
    """The resampled intervals of one measure's Pearson r and Kendall tau against the gap and test accuracy."""
    rows = boot.resamples + 1
    arrays = [boot.checkpoints.get(k) for k in keys]

    def col(key: str) -> np.ndarray:
        if not points:
            return np.empty((rows, 0))
        return np.stack([_resampled(key, c, a, rows) for c, a in zip(points, arrays)], axis=1)

    x_gap, x_test = col(MEASURES[name][1]), col(TEST_KEYS[name][0])
    entry["pearson_gap_ci"], entry["kendall_gap_ci"] = correlation_cis(x_gap, col("gap"), boot.level)
    entry["pearson_test_ci"], entry["kendall_test_ci"] = correlation_cis(x_test, col("test_acc"), boot.level)


def _add_atc(plan: Plan, store: Store, done: dict, cps: dict) -> dict | None:
    """Fit the ATC threshold on the reference checkpoint and put 'atc_acc' and 'atc_gap' on every checkpoint
    with a finished ATC job; return what the report says about the reference (None until it is finished)."""
    ref_run, ref_epoch = atc_reference(plan.spec, plan.runs)
    score = plan.spec.metrics.atc.score
    atc_jobs = {(j.run, j.epoch): j for j in done.values() if j.settings["measure"] == "atc"}
    ref_job, ref_cp = atc_jobs.get((ref_run.name, ref_epoch)), cps.get((ref_run.name, ref_epoch))
    if ref_job is None or ref_cp is None or ref_cp.get("test_acc") is None:
        return None
    rows = store.examples(list(j.id for j in atc_jobs.values()))
    by_job: dict[str, list[dict]] = {}
    for r in rows:
        by_job.setdefault(r["job_id"], []).append(r)
    ref_scores = _atc_scores(by_job.get(ref_job.id, []), score)
    if ref_scores.size == 0:
        return None
    threshold = atc_threshold(ref_scores, ref_cp["test_acc"])
    for key, j in atc_jobs.items():
        c = cps.get(key)
        if c is None or not by_job.get(j.id):
            continue
        c["atc_acc"] = atc_accuracy(_atc_scores(by_job[j.id], score), threshold)
        c["atc_gap"] = c["train_acc"] - c["atc_acc"] if c.get("train_acc") is not None else None
    # equal to test_acc within the bound: half a prompt's share, more where scores tie across the cut
    return {"run": ref_run.name, "epoch": ref_epoch, "test_acc": ref_cp["test_acc"],
            "threshold": finite_or_none(threshold), "score": score,
            "reproduced_acc": atc_accuracy(ref_scores, threshold),
            "reproduction_bound": atc_reproduction_bound(ref_scores, ref_cp["test_acc"])}


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "mean": None, "median": None, "q1": None, "q3": None, "values": []}
    a = np.array(values)
    return {"n": len(values), "mean": float(a.mean()), "median": float(np.median(a)),
            "q1": float(np.quantile(a, 0.25)), "q3": float(np.quantile(a, 0.75)), "values": [float(v) for v in a]}


def add_robustness(plan: Plan, store: Store, summary: dict, runs: list[RunData],
                   p: float | None | Mapping[str, float | None], boot: Bootstrap | None = None) -> None:
    """Per-example accuracy under the original and each perturbed prompt, binned by the example's PreMemAcc at
    the perturbed checkpoint, pooled over the perturbed checkpoints: summary['robustness'][prompt label][bin
    label] = {n, mean, median, q1, q3, values} (accuracies as fractions in [0, 1]) and
    summary['robustness_meta'] ('p': the one p used, None when the runs' blocks differ; 'p_by_run').
    Binned per (model, dataset) block: summary['robustness_blocks'] lists each block's {block, model, dataset,
    robustness, meta}; with one block summary['robustness'] is that block's, with several it is left out.

    `p`: one calibrated p for every run, or a mapping run name -> the p of its (model, dataset) block (runs
    whose p is None, or missing, are left out). With `boot`, each bin's stats get 'mean_ci': the bin's
    accuracies resampled (boot.resamples times, seeded by boot.seed)."""
    spec = plan.spec
    p_of = {r.name: (p.get(r.name) if isinstance(p, Mapping) else p) for r in runs}
    if spec.perturbations is None or all(v is None for v in p_of.values()):
        return
    jobs, _ = store.done_jobs([j for j in plan.jobs if j.kind == "perturb"])
    data = {r.name: r for r in runs if p_of[r.name] is not None}
    # the example's PreMemAcc at each checkpoint of each run, at its block's p
    pm_at: dict[tuple[str, int], dict[str, float]] = {}
    for r in data.values():
        pm = premem_acc(np.nan_to_num(r.acc), r.nll, p_of[r.name])
        for i, e in enumerate(r.epochs):
            pm_at[(r.name, e)] = dict(zip(r.example_ids, pm[i].tolist()))
    # the report names a prompt by its text without surrounding spaces ("original": none); the spec makes sure
    # no two preambles share a label, but a store may hold jobs of an earlier spec's preambles too
    labels: dict[str, str] = {"original": ""}
    for j in jobs:
        pre = j.settings["preamble"]
        if pre:
            label = pre.strip()
            while label in labels and labels[label] != pre:
                label += " "
            labels.setdefault(label, pre)
    perfect = spec.perturbations.perfect_bin
    bins = bins_for(perfect)
    label_of = {text: lab for lab, text in labels.items()}
    block_of_run = {r.name: block_of(r.settings) for r in data.values()}
    # per (model, dataset) block, as the paper draws one panel per task: a bin pooled over two tasks would mix
    # two scales of difficulty (and two p)
    values: dict[tuple, dict[str, list[list[float]]]] = {}
    used: dict[tuple, list[dict]] = {}
    rows = store.examples([j.id for j in jobs])
    by_job: dict[str, list[dict]] = {}
    for r in rows:
        by_job.setdefault(r["job_id"], []).append(r)
    for j in jobs:
        pms = pm_at.get((j.run, j.epoch))
        if pms is None or j.run not in data:
            continue  # its checkpoint's evaluation is not finished yet
        key = block_of_run[j.run]
        block_used = used.setdefault(key, [])
        if {"run": j.run, "epoch": j.epoch} not in block_used:
            block_used.append({"run": j.run, "epoch": j.epoch})
        block_values = values.setdefault(key, {lab: [[] for _ in bins] for lab in labels})
        for r in by_job.get(j.id, []):
            pm = pms.get(str(r["example_id"]))
            if pm is None or not r["n_samples"]:
                continue
            block_values[label_of[j.settings["preamble"]]][bin_of(pm, perfect)].append(r["n_correct"] / r["n_samples"])
    if not used:
        return
    panels = []
    for key in sorted(used, key=lambda k: tuple("" if x is None else x for x in k)):
        checkpoints = used[key]
        ps_used = {p_of[c["run"]] for c in checkpoints}
        meta = {"preambles": labels, "checkpoints": checkpoints, "samples": spec.perturbations.samples,
                "bins": [bin_label(*b) for b in bins], "p": next(iter(ps_used)) if len(ps_used) == 1 else None,
                "p_by_run": {c["run"]: p_of[c["run"]] for c in checkpoints}}
        panels.append({"block": block_label(key), "model": key[0], "dataset": key[1], "meta": meta,
                       "robustness": {lab: {bin_label(*b): _stats(values[key][lab][k]) for k, b in enumerate(bins)}
                                      for lab in labels}})
    if boot is not None:
        rng = np.random.default_rng(boot.seed)
        for panel in panels:
            for stats_by_bin in panel["robustness"].values():
                for st in stats_by_bin.values():
                    st["mean_ci"] = mean_ci(st["values"], rng, boot.resamples, boot.level)
    summary["robustness_blocks"] = panels
    if len(panels) == 1:  # one block: summary['robustness'] as it has always been
        summary["robustness"] = panels[0]["robustness"]
        summary["robustness_meta"] = panels[0]["meta"]
    else:  # several: no pooled figure (it would mix tasks); the report draws one panel per block
        all_used = [c for panel in panels for c in panel["meta"]["checkpoints"]]
        summary["robustness_meta"] = {"preambles": labels, "checkpoints": all_used,
                                      "samples": spec.perturbations.samples, "bins": [bin_label(*b) for b in bins],
                                      "p": None, "p_by_run": {c["run"]: p_of[c["run"]] for c in all_used},
                                      "blocks": [panel["block"] for panel in panels]}
