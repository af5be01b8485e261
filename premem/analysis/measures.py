"""The report's comparative figures from stored results: the classic measures against the generalization gap
(the paper's Fig. 5) and per-example robustness under perturbed prompts by PreMemAcc bin (its Fig. 7).

Both read the results of `measure` and `perturb` jobs and add to a summary that `premem.analysis.analyze` built
(the checkpoints' train/test accuracy and PreMemAcc, and the calibrated p). Nothing here needs a model.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from premem.analysis.intervals import Bootstrap, correlation_cis, mean_ci
from premem.analysis.results import RunData, block_label, block_of, finite_or_none
from premem.measures import MEASURES, Measure
from premem.metrics.premem import premem_acc
from premem.metrics.stats import correlations
from premem.plan.build import Plan
from premem.spec.runs import match_runs
from premem.store import Store

BINS = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0))

#: PreMemAcc in the measures' comparison: it predicts an accuracy, so the gap it predicts is train accuracy minus
#: PreMemAcc, and it is compared with test accuracy as itself (the classic measures: premem.measures)
PREMEM = {"label": "PreMemAcc", "value_key": "premem_gap", "x_label": "train acc − PreMemAcc",
          "test_key": "premem_acc", "test_x_label": "PreMemAcc"}


def _names(measure: Measure) -> dict:
    """A measure's names in the summary's baselines entry (label, keys, axis labels)."""
    return {"label": measure.label, "value_key": measure.gap_key, "x_label": measure.axis,
            "test_key": measure.test_value_key, "test_x_label": measure.test_axis}


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


def add_baselines(plan: Plan, store: Store, summary: dict, boot: Bootstrap | None = None) -> None:
    """Put each classic measure on its checkpoints (summary['runs'][i]['checkpoints']) and their correlations
    with the generalization gap and with test accuracy under summary['baselines'] (and 'baselines_meta').

    Every checkpoint gets 'gap' = train acc - test acc (and 'premem_gap' where PreMemAcc is known), whether or
    not the spec asks for classic measures. Only finished measure jobs count; a missing one leaves its value out.
    With `boot` (premem.analysis.intervals.bootstrap), each correlation gets its interval ('pearson_gap_ci', ...): the
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
    done_by_measure: dict[str, dict[tuple[str, int], object]] = {}
    for j in finished:
        done_by_measure.setdefault(j.settings.measure, {})[(j.run, j.epoch)] = j
    # a measure's reference checkpoint (ATC's) is measured whatever metrics.runs says, but enters the figures
    # only if chosen
    meta: dict = {"runs": [r.name for r in match_runs(plan.runs, spec.metrics.runs)]}
    for name in enabled:
        measure, jobs = MEASURES.get(name), done_by_measure.get(name, {})
        if measure.analyze is not None:  # the measure turns its stored results into checkpoint values itself
            meta.update(measure.analyze(getattr(spec.metrics, name), plan.runs, store, jobs, cps))
            continue
        for key, j in jobs.items():
            c = cps.get(key)
            if c is not None:
                c[name] = finite_or_none(records[j.id].result.get("value"))
    chosen = set(meta["runs"])
    keys = [k for k in cps if k[0] in chosen]
    points = [cps[k] for k in keys]
    baselines = {}
    for name in ["premem", *enabled]:
        names = PREMEM if name == "premem" else _names(MEASURES.get(name))
        gap = correlations([c.get(names["value_key"]) for c in points], [c.get("gap") for c in points])
        test = correlations([c.get(names["test_key"]) for c in points], [c.get("test_acc") for c in points])
        baselines[name] = {**names, "pearson_gap": gap["pearson"], "kendall_gap": gap["kendall"],
                           "pearson_test": test["pearson"], "kendall_test": test["kendall"], "n": gap["n"]}
        if boot is not None:
            _add_correlation_cis(baselines[name], keys, points, boot)
    summary["baselines"] = baselines
    summary["baselines_meta"] = meta


def _resampled(key: str, c: dict, arrays: dict[str, np.ndarray] | None, rows: int) -> np.ndarray:
    """A checkpoint's value of `key` in every resample (row 0 the estimate): what the bootstrap resamples
    (train and test accuracy, PreMemAcc and the gaps made of them) from it, anything else fixed; NaN if unknown.
    A measure that predicts an accuracy (ATC) has its gap resampled through train accuracy, its prediction
    held fixed."""
    if arrays is not None:
        if key == "gap":
            return arrays["train"] - arrays["test"]
        if key == "premem_gap":
            return arrays["train"] - arrays["premem"]
        if key == "premem_acc":
            return arrays["premem"]
        if key == "test_acc":
            return arrays["test"]
        predicted = _PREDICTED.get(key)
        if predicted is not None and c.get(predicted) is not None:
            return arrays["train"] - c[predicted]
    v = c.get(key)
    return np.full(rows, np.nan if v is None else float(v))


#: a predicting measure's gap key -> the key of the accuracy it predicts (ATC: atc_gap -> atc_acc)
_PREDICTED = {m.gap_key: m.predicts for m in MEASURES.in_order() if m.predicts}


def _add_correlation_cis(entry: dict, keys: list, points: list[dict], boot: Bootstrap) -> None:
    """The resampled intervals of one measure's Pearson r and Kendall tau against the gap and test accuracy
    (`entry`: its summary entry, whose value_key and test_key say what is correlated)."""
    rows = boot.resamples + 1
    arrays = [boot.checkpoints.get(k) for k in keys]

    def col(key: str) -> np.ndarray:
        if not points:
            return np.empty((rows, 0))
        return np.stack([_resampled(key, c, a, rows) for c, a in zip(points, arrays)], axis=1)

    x_gap, x_test = col(entry["value_key"]), col(entry["test_key"])
    entry["pearson_gap_ci"], entry["kendall_gap_ci"] = correlation_cis(x_gap, col("gap"), boot.level)
    entry["pearson_test_ci"], entry["kendall_test_ci"] = correlation_cis(x_test, col("test_acc"), boot.level)


def bin_stats(values: list[float]) -> dict:
    """{n, mean, median, q1, q3, values} of one bin's per-example accuracies (None for each statistic of none)."""
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
        pre = j.settings.preamble
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
            block_values[label_of[j.settings.preamble]][bin_of(pm, perfect)].append(r["n_correct"] / r["n_samples"])
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
                       "robustness": {lab: {bin_label(*b): bin_stats(values[key][lab][k]) for k, b in enumerate(bins)}
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
