"""The curation study's figures from the store: test accuracy against training-set size per strategy (the
paper's Fig. 8), each round's selection, and sample efficiency against iid.

summary['curation'] = {'settings': {...}, 'strategies': [names], 'originals': N, '<strategy>': {
  'curve': [{'round', 'size', 'test_acc', 'run', 'status'}],            # one point per trained model
  'rounds': [{'round', 'chosen', 'drawn_from', 'new', 'collected', 'exhausted', 'note', 'premem_mean'}],
  'efficiency': [{'target', 'iid_size', 'size', 'ratio'}],               # absent for iid itself
  (with intervals: 'test_acc_ci' on each curve point, 'ratio_ci' on each efficiency entry, 'mean_ratio_ci')
  'targets_note': str | None}}
"""
from __future__ import annotations

import numpy as np

from premem.curate import default_targets, efficiency
from premem.intervals import Bootstrap, percentile_ci, resample_weights
from premem.plan import Plan
from premem.plan_curation import ROUND0
from premem.store import Store


def curation_summary(plan: Plan, store: Store, boot: Bootstrap | None = None) -> dict | None:
    """summary['curation'] from what the store holds (finished models only); None without a curation section.
    With `boot` (premem.intervals.bootstrap: its level, resamples and seed), the test examples of the final
    evaluations are resampled (the same multiset for every model, so a curve stays a curve): each curve point
    gets 'test_acc_ci', each efficiency entry 'ratio_ci' and each strategy 'mean_ratio_ci'."""
    cp, spec = plan.curation, plan.spec
    if cp is None:
        return None
    c = spec.curation
    model, dataset = spec.curation_pair()
    records = store.records([j.id for j in cp.jobs])

    def result(job_id: str) -> dict | None:
        r = records.get(job_id)
        return r.result if r is not None and r.status == "done" else None

    out: dict = {"settings": {"model": model, "dataset": dataset, "rounds": c.rounds, "threshold": c.threshold,
                              "p": c.p if c.p is not None else spec.premem.p, "new_examples": c.per_round(),
                              "learning_rate": c.learning_rate, "epochs": c.epochs, "source": c.source,
                              "ifd": c.ifd.model_dump(mode="json"), "heuristic": c.heuristic.model_dump(mode="json")},
                 "strategies": list(c.strategies), "originals": None}
    points: dict[str, list[dict]] = {s: [] for s in c.strategies}
    evals: dict[str, str] = {}  # run name -> its final evaluation's job id
    for run in cp.runs:
        train, ev = result(run.train[-1]), result(run.final_eval)
        failed = any(records.get(j) is not None and records[j].status == "failed" for j in (*run.train, *run.evals))
        diverged = any((result(j) or {}).get("diverged") for j in run.train)
        status = "diverged" if diverged else "failed" if failed else "done" if ev is not None else "incomplete"
        point = {"round": run.round, "size": train.get("examples") if train else None,
                 "test_acc": ev.get("test_acc") if ev else None, "run": run.name, "status": status}
        if ev is not None:
            evals[run.name] = run.final_eval
        if run.name == ROUND0 and train:
            out["originals"] = train.get("examples")
        for s in run.strategies:
            points[s].append(point)
    for s in c.strategies:
        rounds = []
        for r, job_id in enumerate(cp.collects.get(s, []), start=1):
            res = result(job_id)
            if res is None:
                continue
            rounds.append({"round": r, "chosen": res.get("chosen"), "drawn_from": res.get("drawn_from"),
                           "new": res.get("new"), "collected": res.get("collected"),
                           "exhausted": res.get("exhausted", []), "note": res.get("note"),
                           "premem_mean": res.get("premem_mean")})
        out[s] = {"curve": sorted(points[s], key=lambda p: p["round"]), "rounds": rounds}
    _add_efficiency(out, c.targets)
    if boot is not None and boot.resamples:
        _add_curation_cis(out, store, evals, boot)
    return out


def _add_curation_cis(out: dict, store: Store, evals: dict[str, str], boot: Bootstrap) -> None:
    """Intervals of each curve point's test accuracy and each efficiency ratio, test examples resampled."""
    rows = [r for r in store.examples(list(evals.values())) if r["split"] != "train"]
    job_of = {j: name for name, j in evals.items()}
    ids = sorted({str(r["example_id"]) for r in rows})
    col = {e: i for i, e in enumerate(ids)}
    names = sorted(evals)
    index = {n: i for i, n in enumerate(names)}
    acc = np.full((len(names), len(ids)), np.nan)
    for r in rows:
        if r["n_samples"]:
            acc[index[job_of[r["job_id"]]], col[str(r["example_id"])]] = r["n_correct"] / r["n_samples"]
    w = resample_weights(np.random.default_rng(boot.seed), len(ids), boot.resamples)
    known = np.isfinite(acc)
    with np.errstate(invalid="ignore", divide="ignore"):
        resampled = (w @ np.where(known, acc, 0.0).T) / (w @ known.T.astype(float))  # (R, models)
    for s in out["strategies"]:
        for point in out[s]["curve"]:
            if point["run"] in index and point["test_acc"] is not None:
                point["test_acc_ci"] = percentile_ci(resampled[:, index[point["run"]]], boot.level)
    if "iid" not in out["strategies"]:
        return

    def curve(entry: dict, row: int) -> list[tuple[float, float]]:
        return [(p["size"], float(resampled[row, index[p["run"]]])) for p in entry["curve"]
                if p["size"] is not None and p["test_acc"] is not None and p["run"] in index]

    for s in out["strategies"]:
        entry = out[s]
        if s == "iid" or not entry.get("efficiency"):
            continue
        targets = [e["target"] for e in entry["efficiency"]]
        ratios = np.full((boot.resamples + 1, len(targets)), np.nan)
        for row in range(1, boot.resamples + 1):
            eff = efficiency(curve(out["iid"], row), curve(entry, row), targets)
            ratios[row] = [np.nan if e["ratio"] is None else e["ratio"] for e in eff]
        for k, e in enumerate(entry["efficiency"]):
            e["ratio_ci"] = percentile_ci(ratios[:, k], boot.level)
        fin = np.isfinite(ratios)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(fin, ratios, 0.0).sum(1) / fin.sum(1)  # as 'mean_ratio': over the ratios defined
        entry["mean_ratio_ci"] = percentile_ci(mean, boot.level)


def _curve(entry: dict) -> list[tuple[float, float]]:
    return [(p["size"], p["test_acc"]) for p in entry["curve"] if p["size"] is not None and p["test_acc"] is not None]


def _add_efficiency(out: dict, targets: list[float] | None) -> None:
    """Each strategy's sample efficiency against iid at the spec's targets (or three defaults of its own)."""
    if "iid" not in out["strategies"]:
        for s in out["strategies"]:
            out[s]["efficiency"], out[s]["targets_note"] = [], "iid is not among the strategies: nothing to compare with"
        return
    iid = _curve(out["iid"])
    base = next((p["test_acc"] for p in out["iid"]["curve"] if p["round"] == 0 and p["test_acc"] is not None), None)
    for s in out["strategies"]:
        if s == "iid":
            continue
        other = _curve(out[s])
        entry = out[s]
        entry["targets_note"] = None
        if len(iid) < 2 or len(other) < 2 or base is None:
            entry["efficiency"] = []
            entry["targets_note"] = "not enough finished rounds yet"
            continue
        ts = list(targets) if targets else default_targets(base, iid, other)
        if not ts:
            entry["targets_note"] = ("neither curve rises above round 0's test accuracy "
                                     f"({base:.3f}): no target to compare at")
        entry["efficiency"] = efficiency(iid, other, ts)
        ratios = [e["ratio"] for e in entry["efficiency"] if e["ratio"] is not None]
        entry["mean_ratio"] = sum(ratios) / len(ratios) if ratios else None
