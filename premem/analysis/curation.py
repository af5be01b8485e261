"""The curation study's figures from the store: test accuracy against training-set size per strategy (the
paper's Fig. 8), each round's selection, and sample efficiency against iid.

summary['curation'] = {'settings': {...}, 'strategies': [names], 'originals': N, '<strategy>': {
  'curve': [{'round', 'size', 'test_acc', 'run', 'status'}],            # one point per trained model
  'rounds': [{'round', 'chosen', 'drawn_from', 'new', 'collected', 'exhausted', 'note', 'premem_mean'}],
  'efficiency': [{'target', 'iid_size', 'size', 'ratio'}],               # absent for iid itself
  (with intervals: 'test_acc_ci' on each curve point, 'ratio_ci' on each efficiency entry, 'mean_ratio_ci')
  'targets_note': str | None}}

With curation.seeds, summary['curation'] also has 'seeds' and 'per_seed' {str(seed): the above for that seed
alone}, and each strategy's 'curve' and 'efficiency' are the seed means: a point's 'size' and 'test_acc' with
'size_ci' and 'test_acc_ci' (95 % t-intervals over seeds, premem.analysis.seeds; None with one seed), 'n' seeds and
'runs'; an efficiency row's 'iid_size', 'size', 'ratio' with their '_ci' and 'n'; 'mean_ratio' with
'mean_ratio_ci'; 'rounds' (each round's selection) is per seed only.
"""
from __future__ import annotations

import numpy as np

from premem.analysis.intervals import Bootstrap, percentile_ci, resample_weights
from premem.analysis.seeds import mean_ci
from premem.data.curate import default_targets, efficiency
from premem.plan.build import Plan
from premem.plan.curation import CurationPlan
from premem.store import Store


def curation_summary(plan: Plan, store: Store, boot: Bootstrap | None = None) -> dict | None:
    """summary['curation'] from what the store holds (finished models only); None without a curation section.
    With `boot` (premem.analysis.intervals.bootstrap: its level, resamples and seed), the test examples of the final
    evaluations are resampled (the same multiset for every model, so a curve stays a curve): each curve point
    gets 'test_acc_ci', each efficiency entry 'ratio_ci' and each strategy 'mean_ratio_ci'."""
    cp, spec = plan.curation, plan.spec
    if cp is None:
        return None
    c = spec.curation
    model, dataset = spec.curation_pair()
    records = store.records([j.id for j in cp.jobs])
    out: dict = {"settings": {"model": model, "dataset": dataset, "rounds": c.rounds, "threshold": c.threshold,
                              "p": c.p if c.p is not None else spec.premem.p, "new_examples": c.per_round(),
                              "learning_rate": c.learning_rate, "epochs": c.epochs, "source": c.source,
                              "ifd": c.ifd.model_dump(mode="json"), "heuristic": c.heuristic.model_dump(mode="json")},
                 "strategies": list(c.strategies), "originals": None}
    if not cp.seeds:
        evals: dict[str, str] = {}  # run name -> its final evaluation's job id
        out |= _seed_summary(cp, c.strategies, records, evals)
        _add_efficiency(out, c.targets)
        if boot is not None and boot.resamples:
            _add_curation_cis(out, store, evals, boot)
        return out
    # curation.seeds: each seed's study on its own (per_seed), and every curve point and ratio averaged over them
    # with a t-interval over seeds: the seeds' spread holds the test examples' noise as well as the training's,
    # so no bootstrap interval is added on top
    out["seeds"] = list(cp.seeds)
    out["per_seed"] = {}
    for seed, part in cp.per_seed():
        one = {"strategies": list(c.strategies)} | _seed_summary(part, c.strategies, records, {})
        out["per_seed"][str(seed)] = one
        if out["originals"] is None:
            out["originals"] = one["originals"]
    _add_seed_means(out, c.targets)
    return out


def _seed_summary(cp: CurationPlan, strategies: list[str], records: dict, evals: dict[str, str]) -> dict:
    """{'originals', '<strategy>': {'curve', 'rounds'}} of one seed's curation plan (or the only one); `evals`
    gets each finished model's final evaluation job id by run name."""

    def result(job_id: str) -> dict | None:
        r = records.get(job_id)
        return r.result if r is not None and r.status == "done" else None

    out: dict = {"originals": None}
    points: dict[str, list[dict]] = {s: [] for s in strategies}
    for run in cp.runs:
        train, ev = result(run.train[-1]), result(run.final_eval)
        failed = any(records.get(j) is not None and records[j].status == "failed" for j in (*run.train, *run.evals))
        diverged = any((result(j) or {}).get("diverged") for j in run.train)
        status = "diverged" if diverged else "failed" if failed else "done" if ev is not None else "incomplete"
        point = {"round": run.round, "size": train.get("examples") if train else None,
                 "test_acc": ev.get("test_acc") if ev else None, "run": run.name, "status": status}
        if ev is not None:
            evals[run.name] = run.final_eval
        if run.round == 0 and train:
            out["originals"] = train.get("examples")
        for s in run.strategies:
            points[s].append(point)
    for s in strategies:
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


def _add_efficiency(out: dict, targets: list[float] | None, only: str | None = None) -> None:
    """Each strategy's sample efficiency against iid at the spec's targets (or three defaults of its own); `only`:
    that strategy's alone."""
    if "iid" not in out["strategies"]:
        for s in out["strategies"]:
            out[s]["efficiency"], out[s]["targets_note"] = [], "iid is not among the strategies: nothing to compare with"
        return
    iid = _curve(out["iid"])
    base = next((p["test_acc"] for p in out["iid"]["curve"] if p["round"] == 0 and p["test_acc"] is not None), None)
    for s in out["strategies"]:
        if s == "iid" or only not in (None, s):
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


def _mean_curve(curves: list[list[dict]]) -> list[dict]:
    """Seeds' curves of one strategy, averaged round by round: size and test accuracy as the mean over the seeds
    whose model of that round is done, with their t-intervals (premem.analysis.seeds); `n` those seeds, `runs`
    every seed's run, `status` done only when every seed's model is."""
    by_round: dict[int, list[dict]] = {}
    for curve in curves:
        for p in curve:
            by_round.setdefault(p["round"], []).append(p)
    out = []
    for rnd in sorted(by_round):
        pts = by_round[rnd]
        done = [p for p in pts if p["status"] == "done" and p["size"] is not None and p["test_acc"] is not None]
        size, size_ci = mean_ci([p["size"] for p in done])
        acc, acc_ci = mean_ci([p["test_acc"] for p in done])
        not_done = [p["status"] for p in pts if p["status"] != "done"]
        run = pts[0]["run"].rsplit("/seed", 1)[0]
        out.append({"round": rnd, "size": size, "size_ci": size_ci, "test_acc": acc, "test_acc_ci": acc_ci,
                    "n": len(done), "run": run, "runs": [p["run"] for p in pts],
                    "status": "done" if done and not not_done else (not_done[0] if not_done else "incomplete")})
    return out


def _add_seed_means(out: dict, targets: list[float] | None) -> None:
    """With curation.seeds: each strategy's curve averaged over seeds, and its sample efficiency against iid read
    per seed at common targets (the spec's, or three defaults from the seed-mean curves) and averaged: per target
    'iid_size', 'size' and 'ratio' the mean over seeds with an interval ('<key>_ci', 'n' seeds with a ratio), and
    'mean_ratio' the mean of the seeds' mean ratios ('mean_ratio_ci')."""
    seeds = list(out["per_seed"].values())
    strategies = out["strategies"]
    for s in strategies:
        out[s] = {"curve": _mean_curve([one[s]["curve"] for one in seeds]), "rounds": []}
    if "iid" not in strategies:
        for one in seeds:
            _add_efficiency(one, targets)
        for s in strategies:
            out[s]["efficiency"], out[s]["targets_note"] = [], "iid is not among the strategies: nothing to compare with"
        return
    iid = _curve(out["iid"])
    base = next((p["test_acc"] for p in out["iid"]["curve"] if p["round"] == 0 and p["test_acc"] is not None), None)
    common: dict[str, list[float]] = {}
    for s in strategies:
        if s == "iid":
            continue
        other = _curve(out[s])
        entry = out[s]
        entry["targets_note"], entry["efficiency"] = None, []
        if len(iid) < 2 or len(other) < 2 or base is None:
            entry["targets_note"] = "not enough finished rounds yet"
            continue
        common[s] = list(targets) if targets else default_targets(base, iid, other)
        if not common[s]:
            entry["targets_note"] = ("neither seed-mean curve rises above round 0's test accuracy "
                                     f"({base:.3f}): no target to compare at")
    for one in seeds:  # every seed at the targets of the seed-mean curves
        for s in strategies:
            if s != "iid":
                _add_efficiency(one, common.get(s) or targets, only=s)
    for s, ts in common.items():
        rows = []
        for k, t in enumerate(ts):
            per = [one[s]["efficiency"][k] for one in seeds if len(one[s].get("efficiency", [])) > k]
            row: dict = {"target": t}
            for key in ("iid_size", "size", "ratio"):
                row[key], row[f"{key}_ci"] = mean_ci([e[key] for e in per])
            row["n"] = sum(e["ratio"] is not None for e in per)
            rows.append(row)
        out[s]["efficiency"] = rows
        out[s]["mean_ratio"], out[s]["mean_ratio_ci"] = mean_ci([one[s].get("mean_ratio") for one in seeds])
