"""The curation study's figures from the store: test accuracy against training-set size per strategy (the
paper's Fig. 8), each round's selection, and sample efficiency against iid.

summary['curation'] = {'settings': {...}, 'strategies': [names], 'originals': N, '<strategy>': {
  'curve': [{'round', 'size', 'test_acc', 'run', 'status'}],            # one point per trained model
  'rounds': [{'round', 'chosen', 'drawn_from', 'new', 'collected', 'exhausted', 'note', 'premem_mean'}],
  'efficiency': [{'target', 'iid_size', 'size', 'ratio'}],               # absent for iid itself
  'targets_note': str | None}}
"""
from __future__ import annotations

from premem.curate import default_targets, efficiency
from premem.plan import Plan
from premem.plan_curation import ROUND0
from premem.store import Store


def curation_summary(plan: Plan, store: Store) -> dict | None:
    """summary['curation'] from what the store holds (finished models only); None without a curation section."""
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
    for run in cp.runs:
        train, ev = result(run.train[-1]), result(run.final_eval)
        failed = any(records.get(j) is not None and records[j].status == "failed" for j in (*run.train, *run.evals))
        diverged = any((result(j) or {}).get("diverged") for j in run.train)
        status = "diverged" if diverged else "failed" if failed else "done" if ev is not None else "incomplete"
        point = {"round": run.round, "size": train.get("examples") if train else None,
                 "test_acc": ev.get("test_acc") if ev else None, "run": run.name, "status": status}
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
    return out


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
