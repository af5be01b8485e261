"""From stored per-example results to the study's figures: PreMemAcc, calibration, R^2, dynamics.

`analyze_plan` reads what the store holds for a plan's runs (finished checkpoints only) and returns the
report's `summary` (what summary.json holds) and `dynamics` (per-example pictures). It needs no model.
`build_summary` does the same from RunData built elsewhere (premem.analysis.results_table: results computed outside
premem).
"""
from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

# RunData is also imported from here (tests, scripts): it lives in premem.analysis.results
from premem.analysis.intervals import Bootstrap, add_intervals, bootstrap
from premem.analysis.results import RunData, block_label, block_of, finite_or_none
from premem.analysis.seeds import seed_groups
from premem.metrics.premem import calibrate, loglog_perplexity, premem_acc, r2_identity, r2_line
from premem.plan.build import Plan
from premem.spec.runs import selected_runs
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
        if job.run not in grid:  # the pretraining, analysis and curation jobs (premem.analysis.curation)
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
        test_ids = sorted({r["example_id"] for r in rows if r["split"] != "train"})
        test_col = {e: i for i, e in enumerate(test_ids)}
        test_acc = np.full((len(ids), len(test_ids)), np.nan)
        for r in rows:
            i = row_of[r["job_id"]]
            # no samples drawn (a settled example, evaluation.skip_settled): accuracy not measured, never guessed;
            # PreMemAcc reads it as 0, which it is whatever the samples would have said
            a = r["n_correct"] / r["n_samples"] if r["n_samples"] else np.nan
            if r["split"] == "train":
                acc[i, col[r["example_id"]]] = a
                nll[i, col[r["example_id"]]] = r["nll"] if r["nll"] is not None else np.nan
            else:
                test_acc[i, test_col[r["example_id"]]] = a
        run = runs_by_name[name]
        known = ~np.isnan(test_acc)  # a test example with no samples drawn is left out (it made the mean NaN)
        test_mean = np.where(known, test_acc, 0.0).sum(axis=1) / np.maximum(known.sum(axis=1), 1)
        out.append(RunData(name, run.settings(), epochs, train_ids, acc, nll, test_mean,
                           [status[name]["losses"].get(e) for e in epochs], test_example_acc=test_acc,
                           test_example_ids=[str(e) for e in test_ids]))
    return out, status


def dynamics_picture(run: RunData, p: float) -> dict:
    """Categories per example and epoch: 0 wrong & not memorized, 1 correct & not memorized,
    2 wrong & memorized, 3 correct & memorized."""
    correct = run.acc >= CORRECT_AT
    memorized = loglog_perplexity(run.nll) < p
    cats = (correct.astype(int) + 2 * memorized.astype(int)).astype(object)
    cats[np.isnan(run.acc)] = None  # not measured: drawn as missing, not as incorrect
    return {"epochs": run.epochs, "example_ids": run.example_ids, "categories": cats.T.tolist()}


def perplexity_gap(runs: list[RunData], p: float | None | Mapping[str, float | None]) -> dict:
    """Median perplexity (exp of the mean target NLL, per token) of correct samples that are memorized vs not, over
    all checkpoints. `p`: one threshold for every run, or a mapping run name -> its block's p (a run whose p is
    None is left out). 'threshold_perplexity' is exp(exp(p)) when every run counted shares one p, else None."""
    mem, unmem, used = [], [], set()
    for r in runs:
        p_r = p.get(r.name) if isinstance(p, Mapping) else p
        if p_r is None:
            continue
        used.add(p_r)
        correct = r.acc >= CORRECT_AT
        memorized = loglog_perplexity(r.nll) < p_r
        perp = np.exp(r.nll)
        mem.append(perp[correct & memorized])
        unmem.append(perp[correct & ~memorized])
    mem_a = np.concatenate(mem) if mem else np.array([])
    unmem_a = np.concatenate(unmem) if unmem else np.array([])
    if not isinstance(p, Mapping) and p is not None:
        used = {p}
    return {
        "memorized_correct_median_perplexity": finite_or_none(np.median(mem_a)) if mem_a.size else None,
        "unmemorized_correct_median_perplexity": finite_or_none(np.median(unmem_a)) if unmem_a.size else None,
        "memorized_correct_count": int(mem_a.size),
        "unmemorized_correct_count": int(unmem_a.size),
        "threshold_perplexity": float(math.exp(math.exp(next(iter(used))))) if len(used) == 1 else None,
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


def _block_groups(runs: list[RunData]) -> list[tuple[tuple[str | None, str | None], list[RunData]]]:
    """The runs grouped by (model, dataset) block, blocks in order of their first run."""
    groups: dict[tuple[str | None, str | None], list[RunData]] = {}
    for r in runs:
        groups.setdefault(block_of(r.settings), []).append(r)
    return list(groups.items())


def _fit_figures(test: list, pm: list, train: list) -> dict:
    """R^2 about y = x and of a fitted line of PreMemAcc ('r2', 'r2_line', over the checkpoints where it is
    known) and of train accuracy ('train_acc': {'r2', 'r2_line'}) against test accuracy; None where undefined."""
    known = [(t, x) for t, x in zip(test, pm) if x is not None and np.isfinite(x)]
    out = {"r2": None, "r2_line": None, "train_acc": {"r2": None, "r2_line": None}}
    if len(test) >= 2:
        out["train_acc"] = {"r2": finite_or_none(r2_identity(test, train)),
                            "r2_line": finite_or_none(r2_line(test, train))}
    if len(known) >= 2:
        ts, xs = [k[0] for k in known], [k[1] for k in known]
        out["r2"], out["r2_line"] = finite_or_none(r2_identity(ts, xs)), finite_or_none(r2_line(ts, xs))
    return out


def analyze(runs: list[RunData], ps: list[float], calibration_runs: list[str], fit: str = "identity",
            fixed_p: float | None = None, calibrate_mode: str = "per_block") -> dict:
    """The headline figures: the chosen p, the calibration curve, R^2 of PreMemAcc and train accuracy against
    test accuracy, per-run per-checkpoint values, and the same per (model, dataset) block.

    `calibrate_mode` 'per_block' (premem.calibrate's default) calibrates p separately in each block of runs
    sharing a model and a dataset (block_of), on the calibration runs of that block; 'pooled' calibrates one p on
    all calibration runs together. `fixed_p` replaces every block's p. Returns a dict with
      'premem': {'p', 'r2', 'r2_line', 'calibration_runs', 'calibration', 'calibrate'}: with one block (or
        pooled) exactly that one calibration; with several blocks under per_block, 'p' is None (each block has
        its own), 'calibration' is empty and 'r2'/'r2_line' pool every checkpoint, each at its own block's p;
      'train_acc': {'r2', 'r2_line'} over all checkpoints; 'test_acc_range' [min, max] or None;
      'checkpoints' (count); 'runs': [{'name', 'checkpoints': [...]}];
      'blocks': [{'model', 'dataset', 'runs', 'p', 'r2', 'r2_line', 'train_acc', 'calibration',
        'calibration_runs', 'checkpoints', 'test_acc_range'}], 'runs' naming the block's runs (accuracies are
        fractions in [0, 1]; p is on the log(log(perplexity)) scale);
      'notes': what could not be calibrated and why.
    """
    if calibrate_mode not in ("per_block", "pooled"):
        raise ValueError(f"calibrate_mode must be 'per_block' or 'pooled', got {calibrate_mode!r}")
    chosen = set(calibration_runs)
    groups = _block_groups(runs)
    pooled = calibrate_mode == "pooled" or len(groups) <= 1

    def calib_data(rs: list[RunData]) -> list:
        # accuracy not measured (NaN) counts 0 in PreMemAcc: exact for examples skipped as settled
        return [(np.nan_to_num(r.acc), r.nll, r.test_acc) for r in rs if r.name in chosen]

    def tidy(curve: list[dict]) -> list[dict]:
        return [{k: finite_or_none(v) for k, v in c.items()} for c in curve]

    notes: list[str] = []
    block_p: dict[tuple, float | None] = {}
    block_curve: dict[tuple, list[dict]] = {}
    for key, rs in groups:  # each block's own calibration (under pooled, a diagnostic: where it would put p)
        data = calib_data(rs)
        block_p[key], curve_b = calibrate(data, ps, fit)
        block_curve[key] = tidy(curve_b)
        if pooled or fixed_p is not None:
            continue
        if block_p[key] is None:
            why = "has no calibration runs" if not data else "has no spread of test accuracy on its calibration runs"
            notes.append(f"Block {block_label(key)} {why}: p could not be calibrated there, so its runs have no "
                         "PreMemAcc.")
    if len(groups) == 1:  # one block: its calibration is the study's, whichever the mode
        p_all, curve_all = block_p[groups[0][0]], list(block_curve[groups[0][0]])
    elif pooled:
        p_all, curve_all = calibrate(calib_data(runs), ps, fit)
        curve_all = tidy(curve_all)
    else:
        p_all, curve_all = None, []
    if fixed_p is not None:
        p_all = fixed_p
    if pooled or fixed_p is not None:  # one p for every block
        block_p = dict.fromkeys(block_p, p_all)
    result = {"premem": {"p": p_all, "r2": None, "r2_line": None, "calibration_runs": calibration_runs,
                         "calibration": curve_all, "calibrate": calibrate_mode},
              "train_acc": {"r2": None, "r2_line": None}, "runs": [], "blocks": [], "notes": notes}
    all_test, all_pm, all_train = [], [], []
    for key, rs in groups:
        p = block_p[key]
        b_test, b_pm, b_train = [], [], []
        for r in rs:
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
            b_test += list(r.test_acc)
            b_train += list(train_acc)
            b_pm += list(pm) if p is not None else [None] * len(r.epochs)
        figures = _fit_figures(b_test, b_pm, b_train)
        result["blocks"].append({
            "model": key[0], "dataset": key[1], "runs": [r.name for r in rs], "p": p,
            "r2": figures["r2"], "r2_line": figures["r2_line"], "train_acc": figures["train_acc"],
            "calibration": block_curve[key], "calibration_runs": [r.name for r in rs if r.name in chosen],
            "checkpoints": len(b_test),
            "test_acc_range": [float(min(b_test)), float(max(b_test))] if b_test else None})
        all_test += b_test
        all_train += b_train
        all_pm += b_pm
    # in run order, as the runs came (the blocks only group them)
    order = {r.name: i for i, r in enumerate(runs)}
    result["runs"].sort(key=lambda e: order[e["name"]])
    figures = _fit_figures(all_test, all_pm, all_train)
    result["train_acc"] = figures["train_acc"]
    if pooled and p_all is None:
        figures["r2"] = figures["r2_line"] = None
    result["premem"]["r2"], result["premem"]["r2_line"] = figures["r2"], figures["r2_line"]
    result["test_acc_range"] = [float(min(all_test)), float(max(all_test))] if all_test else None
    result["checkpoints"] = len(all_test)
    return result


def build_summary(runs: list[RunData], run_entries: list[dict], *, ps: list[float], calibration_runs: list[str],
                  fit: str = "identity", fixed_p: float | None = None, study: dict | None = None,
                  notes: list[str] | None = None, gap_extra=None,
                  calibrate_mode: str = "per_block", boot: Bootstrap | None = None) -> tuple[dict, dict]:
    """(summary, dynamics) for the report: what summary.json holds and the per-example pictures.

    `run_entries`: one dict per run shown, in order, with 'id', 'name', 'status', 'error' and 'settings'; each
    gets the 'checkpoints' that `analyze` computed for the RunData of the same name (none if it has none) and
    'p', its (model, dataset) block's p (None where not calibrated). `study`: {'name', 'path', 'text'} shown as the
    study's source. `gap_extra`: a callable returning more perplexity-gap entries (or None), called only when some
    p is known. `calibrate_mode`: 'per_block' or 'pooled' (see `analyze`); summary['blocks'] has one entry per
    block, summary['premem'] the single calibration (or, for several blocks calibrated apart, p None and the
    R^2 of every checkpoint at its block's p). An entry may carry 'seed' and 'seed_group' (the name it shares with
    the runs that differ from it only by seed): summary['seed_groups'] then averages each group over its seeds
    (premem.analysis.seeds). `boot`: premem.analysis.intervals.bootstrap of the same runs and settings, whose intervals
    (the '_ci' keys, 'loro', summary['intervals']) are added; None: no intervals.
    """
    core = analyze(runs, ps, calibration_runs, fit, fixed_p, calibrate_mode)
    per_run = {r["name"]: r["checkpoints"] for r in core["runs"]}
    p_of = {name: b["p"] for b in core["blocks"] for name in b["runs"]}
    p_of_block = {(b["model"], b["dataset"]): b["p"] for b in core["blocks"]}
    entries = [dict(e) | {"checkpoints": per_run.get(e["name"], []),
                          "p": p_of.get(e["name"], p_of_block.get(block_of(e.get("settings") or {})))}
               for e in run_entries]
    notes = list(notes or []) + core["notes"]
    missing = [r["name"] for r in entries if r["status"] != "done"]
    if missing:
        notes.append(f"{len(missing)} of {len(entries)} runs are not complete; figures use finished checkpoints only.")
    known = any(p is not None for p in p_of.values())
    if not known and entries and not core["notes"]:  # a study without grid runs (curation only): nothing to calibrate
        notes.append("p could not be calibrated: the calibration runs have no spread of test accuracy yet.")
    data = {r.name: r for r in runs}
    for b in core["blocks"]:
        b["perplexity_gap"] = (perplexity_gap([data[n] for n in b["runs"]], b["p"]) if b["p"] is not None
                               else None)
    summary = {
        "spec": dict(study or {"name": "", "path": "", "text": ""}),
        "generated_at": _dt.datetime.now().isoformat(timespec="seconds"),
        "premem": core["premem"],
        "train_acc": core["train_acc"],
        "test_acc_range": core["test_acc_range"],
        "checkpoints": core["checkpoints"],
        "blocks": core["blocks"],
        "notes": notes,
        "runs": entries,
    }
    groups = seed_groups(entries)  # entries with a 'seed_group': only when the spec gives seeds
    if groups:
        summary["seed_groups"] = groups
    if boot is not None:
        add_intervals(summary, boot)
    dynamics = {}
    if known:
        summary["perplexity_gap"] = perplexity_gap(runs, p_of) | ((gap_extra() if gap_extra else None) or {})
        dynamics = {r.name: dynamics_picture(r, p_of[r.name]) for r in runs if p_of[r.name] is not None}
    return summary, dynamics


SAMPLES_SHOWN = 24  # train examples per run page shown with their samples beside their targets


def add_run_details(plan: Plan, store: Store, summary: dict, runs: list[RunData]) -> None:
    """Give each run of summary['runs'] its training loss curve ('loss_curve': [{step, epoch, loss}]) and, at its
    last finished checkpoint, a selection of train examples with their samples beside their targets
    ('samples': {epoch, p, examples: [...]}, memorized ones marked at the run's block's calibrated p)."""
    from premem.data.answers import grade
    from premem.data.format import target_of
    from premem.data.loaders import DataError, load_splits

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
        p = entry.get("p")  # the run's own block's p
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
        entry["samples"] = {"epoch": epoch, "p": p, "examples": pick_samples(shown, SAMPLES_SHOWN)}


def pick_samples(rows: list[dict], n: int) -> list[dict]:
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
                            "settings": run.settings(), "seed": run.seed}
                           | ({"seed_group": run.base_name} if run.seeded else {})
                           | ({"diverged_step": info["diverged_step"]} if "diverged_step" in info else {}))
    text = Path(spec_path).read_text() if spec_path and Path(spec_path).exists() else ""
    iv = spec.premem.intervals
    boot = (bootstrap(runs, spec.premem.p_grid.values(), calibration, spec.premem.fit, spec.premem.p,
                      spec.premem.calibrate, iv.resamples, iv.level, iv.seed) if iv.resamples else None)
    summary, dynamics = build_summary(runs, run_entries, ps=spec.premem.p_grid.values(),
                                      calibration_runs=calibration, fit=spec.premem.fit, fixed_p=spec.premem.p,
                                      calibrate_mode=spec.premem.calibrate,
                                      study={"name": spec.name, "path": spec_path or "", "text": text},
                                      gap_extra=lambda: irreducible_floor(spec), boot=boot)
    from premem.analysis.measures import add_baselines, add_robustness
    from premem.analysis.precision import mark_precision

    add_baselines(plan, store, summary, boot)
    add_robustness(plan, store, summary, runs, {e["name"]: e["p"] for e in summary["runs"]}, boot)
    add_run_details(plan, store, summary, runs)
    mark_precision(plan, summary)  # runs trained in pure bfloat16/float16: a note and their settings
    from premem.analysis.curation import curation_summary

    curation = curation_summary(plan, store, boot)
    if curation is not None:
        summary["curation"] = curation
    return summary, dynamics
