"""From stored per-example results to the study's figures: PreMemAcc, calibration, R^2, dynamics.

`analyze_plan` reads what the store holds for a plan's runs (finished checkpoints only) and returns the
report's `summary` (what summary.json holds) and `dynamics` (per-example pictures). It needs no model.
`build_summary` does the same from RunData built elsewhere (premem.tables: results computed outside premem).
"""
from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path

import numpy as np

# RunData is also imported from here (tests, scripts): it lives in premem.analysis_results
from premem.analysis_results import RunData, finite_or_none
from premem.metrics.premem import calibrate, loglog_perplexity, premem_acc, r2_identity, r2_line
from premem.plan import Plan
from premem.spec_runs import selected_runs
from premem.store import Store

CORRECT_AT = 0.5  # an example counts as "correct" at a checkpoint in the dynamics picture when Acc >= this


def finished_checkpoints(plan: Plan, store: Store) -> tuple[dict[str, list[tuple[int, str, dict]]], dict[str, dict]]:
    """Per run, the checkpoints the figures use: [(epoch, evaluate job id, result)] in epoch order, those of
    epochs 1..m with every one done (PreMemAcc runs over epochs, so a checkpoint after a gap is left out);
    and per-run status info {'status', 'error', 'losses'}."""
    records = store.records([j.id for j in plan.jobs])
    by_run: dict[str, list] = {}
    status: dict[str, dict] = {}
    grid = plan.runs_by_name()
    for job in plan.jobs:
        if job.run not in grid:  # the pretraining, analysis and curation jobs (premem.analysis_curation)
            continue
        info = status.setdefault(job.run, {"status": "done", "error": None, "losses": {}})
        rec = records.get(job.id)
        if rec is None:
            if info["status"] == "done":
                info["status"] = "incomplete"
            continue
        if rec.status == "failed":
            if info["status"] != "diverged":
                info["status"] = "failed"
                info["error"] = info["error"] or f"{job.label}: {rec.error}"
            continue
        if job.kind == "train" and rec.result and rec.result.get("diverged"):  # the rest of the run is skipped
            d = rec.result["diverged"]
            info.update(status="diverged", diverged_step=d["step"],
                        error=f"diverged at step {d['step']} (epoch {d['epoch']}): loss {d['loss']}")
            continue
        if job.kind == "train" and rec.result:
            info["losses"][job.epoch] = rec.result.get("mean_loss")
        if job.kind == "evaluate":
            by_run.setdefault(job.run, []).append((job.epoch, job.id, rec.result))
    out: dict[str, list[tuple[int, str, dict]]] = {}
    for name, items in by_run.items():
        items.sort()
        kept = []
        for k, item in enumerate(items):
            if item[0] != k + 1:
                break
            kept.append(item)
        if kept:
            out[name] = kept
    return out, status


def gather_runs(plan: Plan, store: Store) -> tuple[list[RunData], dict[str, dict]]:
    """Per-run aligned arrays from the store; and per-run status info {'status', 'error', 'train_loss'}."""
    by_run, status = finished_checkpoints(plan, store)
    runs_by_name = plan.runs_by_name()
    out = []
    for name, items in by_run.items():
        epochs = [epoch for epoch, _, _ in items]
        ids = [jid for _, jid, _ in items]
        rows = store.examples(ids)
        train_ids = sorted({r["example_id"] for r in rows if r["split"] == "train"})
        col = {e: i for i, e in enumerate(train_ids)}
        row_of = {jid: i for i, jid in enumerate(ids)}
        acc = np.full((len(ids), len(train_ids)), np.nan)
        nll = np.full_like(acc, np.nan)
        test_sum = np.zeros(len(ids))
        test_n = np.zeros(len(ids))
        for r in rows:
            i = row_of[r["job_id"]]
            # no samples drawn (a settled example, evaluation.skip_settled): accuracy not measured, never guessed;
            # PreMemAcc reads it as 0, which it is whatever the samples would have said
            a = r["n_correct"] / r["n_samples"] if r["n_samples"] else np.nan
            if r["split"] == "train":
                acc[i, col[r["example_id"]]] = a
                nll[i, col[r["example_id"]]] = r["nll"] if r["nll"] is not None else np.nan
            else:
                test_sum[i] += a
                test_n[i] += 1
        run = runs_by_name[name]
        out.append(RunData(name, run.settings(), epochs, train_ids, acc, nll,
                           np.divide(test_sum, np.maximum(test_n, 1)),
                           [status[name]["losses"].get(e) for e in epochs]))
    return out, status


def dynamics_picture(run: RunData, p: float) -> dict:
    """Categories per example and epoch: 0 wrong & not memorized, 1 correct & not memorized,
    2 wrong & memorized, 3 correct & memorized."""
    correct = run.acc >= CORRECT_AT
    memorized = loglog_perplexity(run.nll) < p
    cats = (correct.astype(int) + 2 * memorized.astype(int)).astype(object)
    cats[np.isnan(run.acc)] = None  # not measured: drawn as missing, not as incorrect
    return {"epochs": run.epochs, "example_ids": run.example_ids, "categories": cats.T.tolist()}


def perplexity_gap(runs: list[RunData], p: float) -> dict:
    """Median perplexity of correct samples that are memorized vs not, over all checkpoints, at p."""
    mem, unmem = [], []
    for r in runs:
        correct = r.acc >= CORRECT_AT
        memorized = loglog_perplexity(r.nll) < p
        perp = np.exp(r.nll)
        mem.append(perp[correct & memorized])
        unmem.append(perp[correct & ~memorized])
    mem_a = np.concatenate(mem) if mem else np.array([])
    unmem_a = np.concatenate(unmem) if unmem else np.array([])
    return {
        "memorized_correct_median_perplexity": finite_or_none(np.median(mem_a)) if mem_a.size else None,
        "unmemorized_correct_median_perplexity": finite_or_none(np.median(unmem_a)) if unmem_a.size else None,
        "memorized_correct_count": int(mem_a.size),
        "unmemorized_correct_count": int(unmem_a.size),
        "threshold_perplexity": float(math.exp(math.exp(p))),
    }


def irreducible_floor(spec) -> dict | None:
    """For built-in task datasets: the per-token NLL a perfect model of the task reaches on a trace it has
    not seen (the trace's exact log-probability under the generator over its target tokens). Memorization
    means going below this floor, so a threshold p below log(floor) separates memorizing from skill."""
    from premem.data.format import target_of
    from premem.data.loaders import load_splits
    from premem.data.tokenizer import WordTokenizer

    floors = []
    codec = WordTokenizer.for_arithmetic_task()
    for ds in spec.datasets:
        if ds.builtin != "arithmetic":
            continue
        for ex in load_splits(ds).train:
            floors.append(-ex.trace_logprob / len(codec.encode(target_of(ex.solution))))
    if not floors:
        return None
    arr = np.array(floors)
    return {"irreducible_perplexity": float(np.exp(np.median(arr))),
            "irreducible_nll_p10": float(np.quantile(arr, 0.1)),
            "irreducible_nll_median": float(np.median(arr)),
            "irreducible_loglog_p10": float(np.log(np.quantile(arr, 0.1)))}


def analyze(runs: list[RunData], ps: list[float], calibration_runs: list[str], fit: str = "identity",
            fixed_p: float | None = None) -> dict:
    """The headline figures: chosen p, calibration curve, R^2 of PreMemAcc and train accuracy vs test,
    and per-run per-checkpoint values."""
    # accuracy not measured (NaN) counts 0 in PreMemAcc: exact for examples skipped as settled
    calib = [(np.nan_to_num(r.acc), r.nll, r.test_acc) for r in runs if r.name in set(calibration_runs)]
    p, curve = calibrate(calib, ps, fit)
    if fixed_p is not None:
        p = fixed_p
    result = {"premem": {"p": p, "r2": None, "r2_line": None, "calibration_runs": calibration_runs,
                         "calibration": [{k: finite_or_none(v) for k, v in c.items()} for c in curve]},
              "train_acc": {"r2": None, "r2_line": None}, "runs": []}
    all_test, all_pm, all_train = [], [], []
    for r in runs:
        train_acc = np.nanmean(r.acc, axis=1)
        pm = premem_acc(np.nan_to_num(r.acc), r.nll, p).mean(axis=1) if p is not None else [None] * len(r.epochs)
        memo = (loglog_perplexity(r.nll) < p).mean(axis=1) if p is not None else [None] * len(r.epochs)
        cps = []
        for i, e in enumerate(r.epochs):
            cps.append({"epoch": e, "train_acc": finite_or_none(train_acc[i]),
                        "test_acc": finite_or_none(r.test_acc[i]),
                        "premem_acc": finite_or_none(pm[i]) if p is not None else None,
                        "train_nll": finite_or_none(np.nanmean(r.nll[i])),
                        "memorized_frac": finite_or_none(memo[i]) if p is not None else None,
                        "train_loss": finite_or_none(r.train_loss[i]) if r.train_loss[i] is not None else None})
        result["runs"].append({"name": r.name, "checkpoints": cps})
        all_test += list(r.test_acc)
        all_train += list(train_acc)
        if p is not None:
            all_pm += list(pm)
    if len(all_test) >= 2:
        result["train_acc"] = {"r2": finite_or_none(r2_identity(all_test, all_train)),
                               "r2_line": finite_or_none(r2_line(all_test, all_train))}
        if p is not None:
            result["premem"]["r2"] = finite_or_none(r2_identity(all_test, all_pm))
            result["premem"]["r2_line"] = finite_or_none(r2_line(all_test, all_pm))
    result["test_acc_range"] = [float(min(all_test)), float(max(all_test))] if all_test else None
    result["checkpoints"] = len(all_test)
    return result


def build_summary(runs: list[RunData], run_entries: list[dict], *, ps: list[float], calibration_runs: list[str],
                  fit: str = "identity", fixed_p: float | None = None, study: dict | None = None,
                  notes: list[str] | None = None, gap_extra=None) -> tuple[dict, dict]:
    """(summary, dynamics) for the report: what summary.json holds and the per-example pictures.

    `run_entries`: one dict per run shown, in order, with 'id', 'name', 'status', 'error' and 'settings'; each
    gets the 'checkpoints' that `analyze` computed for the RunData of the same name (none if it has none).
    `study`: {'name', 'path', 'text'} shown as the study's source. `gap_extra`: a callable returning more
    perplexity-gap entries (or None), called only when p is known.
    """
    core = analyze(runs, ps, calibration_runs, fit, fixed_p)
    p = core["premem"]["p"]
    per_run = {r["name"]: r["checkpoints"] for r in core["runs"]}
    entries = [dict(e) | {"checkpoints": per_run.get(e["name"], [])} for e in run_entries]
    notes = list(notes or [])
    missing = [r["name"] for r in entries if r["status"] != "done"]
    if missing:
        notes.append(f"{len(missing)} of {len(entries)} runs are not complete; figures use finished checkpoints only.")
    if p is None and entries:  # a study without grid runs (curation only) has nothing to calibrate
        notes.append("p could not be calibrated: the calibration runs have no spread of test accuracy yet.")
    summary = {
        "spec": dict(study or {"name": "", "path": "", "text": ""}),
        "generated_at": _dt.datetime.now().isoformat(timespec="seconds"),
        "premem": core["premem"],
        "train_acc": core["train_acc"],
        "test_acc_range": core["test_acc_range"],
        "checkpoints": core["checkpoints"],
        "notes": notes,
        "runs": entries,
    }
    dynamics = {}
    if p is not None:
        summary["perplexity_gap"] = perplexity_gap(runs, p) | ((gap_extra() if gap_extra else None) or {})
        dynamics = {r.name: dynamics_picture(r, p) for r in runs}
    return summary, dynamics


SAMPLES_SHOWN = 24  # train examples per run page shown with their samples beside their targets


def add_run_details(plan: Plan, store: Store, summary: dict, runs: list[RunData]) -> None:
    """Give each run of summary['runs'] its training loss curve ('loss_curve': [{step, epoch, loss}]) and, at its
    last finished checkpoint, a selection of train examples with their samples beside their targets
    ('samples': {epoch, p, examples: [...]}, memorized ones marked at the calibrated p)."""
    from premem.data.format import target_of
    from premem.data.loaders import DataError, load_splits
    from premem.evaluate import grade

    p = summary["premem"]["p"]
    grid = plan.runs_by_name()
    train_jobs = [j for j in plan.jobs if j.kind == "train" and j.run in grid]
    records = store.records([j.id for j in train_jobs])
    curves: dict[str, list[dict]] = {}
    for j in sorted(train_jobs, key=lambda j: (j.run, j.epoch)):
        rec = records.get(j.id)
        if rec is None or rec.status != "done" or not rec.result:
            continue
        losses, steps = rec.result.get("losses") or [], rec.result.get("steps") or 0
        start = rec.result.get("end_step", steps) - steps
        for i, loss in enumerate(losses):  # the stored curve is downsampled evenly over the epoch's steps
            step = start + (i * (steps - 1) / (len(losses) - 1) if len(losses) > 1 else steps - 1) + 1
            curves.setdefault(j.run, []).append({"step": round(step), "epoch": j.epoch, "loss": finite_or_none(loss)})
    last_eval = {}
    by_run, _ = finished_checkpoints(plan, store)
    for name, items in by_run.items():
        last_eval[name] = items[-1][:2]
    data_by_run = {r.name: r for r in runs}
    texts: dict[str, dict] = {}
    for entry in summary["runs"]:
        name = entry["name"]
        entry["loss_curve"] = curves.get(name, [])
        if name not in last_eval or name not in data_by_run:
            continue
        epoch, job_id = last_eval[name]
        ds_name = plan.runs_by_name()[name].dataset
        if ds_name not in texts:
            try:
                texts[ds_name] = {str(ex.id): ex for ex in load_splits(plan.spec.dataset(ds_name)).train}
            except (DataError, OSError):
                texts[ds_name] = {}
        rows = [r for r in store.examples([job_id], with_samples=True) if r["split"] == "train"]
        rows.sort(key=lambda r: str(r["example_id"]))
        run = data_by_run[name]
        col = {e: i for i, e in enumerate(run.example_ids)}
        pm = premem_acc(np.nan_to_num(run.acc), run.nll, p)[-1] if p is not None else None
        shown = []
        for r in rows:
            ex = texts[ds_name].get(str(r["example_id"]))
            nll = r["nll"]
            memorized = bool(loglog_perplexity(nll) < p) if p is not None and nll is not None else None
            k = col.get(str(r["example_id"]))
            samples = r.get("samples") or []
            shown.append({"example_id": str(r["example_id"]), "question": ex.question if ex else None,
                          "target": target_of(ex.solution).strip() if ex else None,
                          "samples": samples,
                          # graded as the evaluation graded them: against the gold answer, in its format
                          "correct": [grade([c], ex.answer, getattr(ex, "answer_format", "gsm8k"))[0] == 1
                                      for c in samples] if ex else None,
                          "acc": r["n_correct"] / r["n_samples"] if r["n_samples"] else None,
                          "nll": finite_or_none(nll),
                          "perplexity": finite_or_none(math.exp(nll)) if nll is not None else None,
                          "memorized": memorized,
                          "premem_acc": finite_or_none(pm[k]) if pm is not None and k is not None else None})
        entry["samples"] = {"epoch": epoch, "p": p, "examples": _pick(shown, SAMPLES_SHOWN)}


def _pick(rows: list[dict], n: int) -> list[dict]:
    """At most `n` rows, half memorized and half not where both exist, evenly spread over each group."""
    mem = [r for r in rows if r["memorized"]]
    rest = [r for r in rows if not r["memorized"]]
    take_mem = min(len(mem), max(n // 2, n - len(rest)))

    def spread(xs, k):
        if k >= len(xs):
            return xs
        return [xs[round(i * (len(xs) - 1) / max(1, k - 1))] for i in range(k)] if k > 0 else []
    return spread(mem, take_mem) + spread(rest, min(len(rest), n - take_mem))


def analyze_plan(plan: Plan, store: Store, spec_path: str | None = None) -> tuple[dict, dict]:
    """(summary, dynamics) for the report from what the store holds for `plan`."""
    spec = plan.spec
    runs, status = gather_runs(plan, store)
    calibration = [r.name for r in selected_runs(spec, plan.runs)]
    run_entries = []
    for run in plan.runs:
        info = status.get(run.name, {"status": "incomplete", "error": None})
        run_entries.append({"id": run.name, "name": run.name, "status": info["status"], "error": info["error"],
                            "settings": run.settings()} | ({"diverged_step": info["diverged_step"]}
                                                          if "diverged_step" in info else {}))
    text = Path(spec_path).read_text() if spec_path and Path(spec_path).exists() else ""
    summary, dynamics = build_summary(runs, run_entries, ps=spec.premem.p_grid.values(),
                                      calibration_runs=calibration, fit=spec.premem.fit, fixed_p=spec.premem.p,
                                      study={"name": spec.name, "path": spec_path or "", "text": text},
                                      gap_extra=lambda: irreducible_floor(spec))
    from premem.analysis_measures import add_baselines, add_robustness
    from premem.precision import mark_precision

    add_baselines(plan, store, summary)
    add_robustness(plan, store, summary, runs, summary["premem"]["p"])
    add_run_details(plan, store, summary, runs)
    mark_precision(plan, summary)  # runs trained in pure bfloat16/float16: a note and their settings
    from premem.analysis_curation import curation_summary

    curation = curation_summary(plan, store)
    if curation is not None:
        summary["curation"] = curation
    return summary, dynamics
