"""premem's command line: validate, plan, apply, status, report, schema, analyze, export."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import signal
import sys
import time
from pathlib import Path

from premem.safetext import escape_controls
from premem.spec.load import SpecError, load_spec
from premem.wording import counted

#: exit codes of every command: 0 done; 1 invalid input, refused before anything was run or written (a spec,
#: a command line, a results table, an output place premem must not write: a system or home folder, a folder
#: that is not premem's report, a file in the way); 2 the work could not be done or finished (no results yet, a
#: store that is damaged, unwritable for `apply`, or full, failed jobs, a file system error, a bug); 130
#: interrupted (Ctrl-C).
EXIT_OK, EXIT_INVALID, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 130


SHOWN_PROBLEMS = 200  # a generated or hostile spec can have a million; the first ones show what is wrong


def _load(path: str):
    """The spec, or exit 1 after printing its problems with file:line (the first SHOWN_PROBLEMS of them)."""
    spec = _load_or_say_why(path)
    if spec is None:
        raise SystemExit(EXIT_INVALID)
    return spec


def _load_or_say_why(path: str):
    """The spec, or None after printing its problems with file:line (the first SHOWN_PROBLEMS of them) and a last
    line `FILE: N problems; nothing was run.` on stderr."""
    try:
        return load_spec(path)
    except SpecError as e:
        for p in e.problems[:SHOWN_PROBLEMS]:
            print(str(p), file=sys.stderr)
        n = len(e.problems)
        more = f" ({n - SHOWN_PROBLEMS:,} not shown)" if n > SHOWN_PROBLEMS else ""
        print(f"{escape_controls(path)}: {n:,} problem{'s' if n != 1 else ''}{more}; nothing was run.",
              file=sys.stderr)
        return None


def _store(spec):
    from premem.store import Store

    return Store(Path(spec.store))


def _runs_text(plan) -> str:
    """"9 runs", or with a curation section "0 runs, 17 curation models" (each round's model of each strategy,
    round 0 once, the IFD scorer)."""
    text = f"{len(plan.runs)} runs"
    if plan.curation is not None:
        n = len(plan.curation.runs) + sum(part.scorer is not None for _, part in plan.curation.per_seed())
        text += f", {n} curation models"
    return text


def cmd_validate(args) -> int:
    """Each spec named: its problems, or a line saying it is valid; exit 1 when any has a problem."""
    from premem.plan.build import build_plan

    code = EXIT_OK
    for path in args.specs:
        spec = _load_or_say_why(path)
        if spec is None:
            code = EXIT_INVALID
            continue
        plan = build_plan(spec)
        print(f"{escape_controls(path)}: valid. {_runs_text(plan)}, {len(plan.jobs)} jobs.")
    return code


def cmd_plan(args) -> int:
    from premem.jobs.schedule import job_statuses
    from premem.plan.build import build_plan, job_view

    spec = _load(args.spec)
    plan = build_plan(spec)
    status = job_statuses(plan, _store(spec))
    if args.cost is not None:  # what the jobs still to run (and the whole study) cost: premem/cost/estimate.py
        from premem.cost.estimate import estimate, format_estimate
        from premem.cost.throughputs import CostError

        try:
            print(format_estimate(estimate(plan, status, args.cost or None), args.spec))
        except CostError as e:
            print("\n".join(e.lines), file=sys.stderr)
            return EXIT_INVALID
        return EXIT_OK
    from premem.cost.memory import memory_lines, plan_memory, uses_gpu

    if args.json:
        view = {"spec": spec.name, "runs": [r.settings() | {"name": r.name} for r in plan.runs],
                "jobs": [job_view(j, status[j.id]) for j in plan.jobs]}
        if uses_gpu(spec):  # each (model, dataset) pair's train-job memory per GPU (premem.cost.memory)
            from premem.cost.memory import gpu_memory

            gib, src = gpu_memory(spec)
            view["train_memory"] = {"gpu_gib": gib, "gpu_gib_source": src,
                                    "pairs": [e.as_dict() for e in plan_memory(plan)]}
        print(json.dumps(view, indent=2))
        return EXIT_OK
    for j in plan.jobs:
        print(f"  {j.short}  {j.kind:<9} {status[j.id]:<7} {j.label}")
    n_run = sum(1 for s in status.values() if s not in ("done", "diverged", "skipped"))
    print(f"Plan: {n_run} to run, {len(status) - n_run} done. ({_runs_text(plan)})")
    from premem.cost.estimate import plan_footer

    if uses_gpu(spec):
        print("\n".join(memory_lines(plan)))
    print("\n".join(plan_footer(plan, status, args.spec)))
    return EXIT_OK


def cmd_status(args) -> int:
    from premem.jobs.schedule import job_statuses
    from premem.plan.build import build_plan

    spec = _load(args.spec)
    plan = build_plan(spec)
    store = _store(spec)
    records = store.records([j.id for j in plan.jobs])
    status = job_statuses(plan, store)
    nodes, tries = store.nodes(), store.tries()
    counts: dict[str, int] = {}
    for j in plan.jobs:
        st = status[j.id]
        counts[st] = counts.get(st, 0) + 1
        shown = "not started" if st == "to run" else st
        line = f"  {j.short}  {shown:<11} {j.label}"
        if j.id in nodes and st in ("done", "diverged", "failed", "running"):
            extra = f", {tries[j.id]} tries" if tries.get(j.id, 1) > 1 else ""
            line += f"  [node {nodes[j.id][:8]}{extra}]"
        if st == "failed":
            from premem.jobs.schedule import last_line

            line += f"  -- {last_line(records[j.id].error or '')}"
        if st == "diverged":
            d = records[j.id].result["diverged"]
            line += f"  -- loss {d['loss']} at step {d['step']}"
        print(line)
    print(", ".join(f"{v} {'not started' if k == 'to run' else k}" for k, v in sorted(counts.items())))
    return EXIT_OK


def _write_report(spec, plan, store, spec_path: str, headline: bool = False, on_summary=None) -> Path:
    from premem.analysis.analyze import analyze_plan
    from premem.report.html import write_report

    summary, dynamics = analyze_plan(plan, store, spec_path)
    if on_summary is not None:  # the trackers (premem.tracking) log what the analysis computed
        on_summary(summary)
    remote = [m.name for m in spec.models if getattr(m, "trust_remote_code", False)]
    if remote:  # a model's own Python code ran in the jobs: the reader must know
        summary.setdefault("notes", []).insert(0, f"trust_remote_code is on for {', '.join(remote)}: the model's own "
                                               "Python code from its repository ran in every job that loaded it.")
        summary.setdefault("trust_remote_code", remote)
    kept: list[str] = []
    path = write_report(summary, dynamics, Path(spec.report), kept=kept)
    _print_kept(kept)
    if headline and summary["runs"]:  # p and R^2 with their intervals, as `premem analyze` prints them
        print_headline(summary)
    return path


def _print_kept(kept: list[str]) -> None:
    """Name the user's files a report write could not put back into the report folder (never deleted)."""
    for k in kept:
        print(f"Note: {k} is yours (not premem's) and was changed while the report was written; it is kept there "
              "beside the report folder: move it where you want it.", file=sys.stderr)


def _report_folder_problem(where: str, label: str, typed: bool = False) -> str | None:
    """A one-line refusal for the report folder `where` (None if premem may write a report there); `typed`: a
    path given on the command line, which may lead out of the working directory with `..`."""
    from premem.report.folder import report_folder_problem

    problem = report_folder_problem(where, may_climb=typed)
    return f"{label}: {problem}" if problem else None


def cmd_report(args) -> int:
    from premem.plan.build import build_plan

    spec = _load(args.spec)
    problem = _report_folder_problem(spec.report, "report")
    if problem:
        print(f"premem: {problem}; nothing was written.", file=sys.stderr)
        return EXIT_INVALID
    plan = build_plan(spec)
    store = _store(spec)
    if not store.exists():
        print(f"no results yet in {store.root}: run `premem apply {args.spec}` first", file=sys.stderr)
        return EXIT_FAILED
    if not store.done_jobs(plan.jobs)[0]:  # an emptied database must not replace a report with an empty one
        print(f"no results of this spec in {store.root}: run `premem apply {args.spec}` first; nothing was written "
              f"(the report in {spec.report} is left as it is)", file=sys.stderr)
        return EXIT_FAILED
    path = _write_report(spec, plan, store, args.spec)
    print(f"report: {path}")
    return EXIT_OK


def cmd_apply(args) -> int:
    from premem.cost.disk import store_problem
    from premem.jobs.schedule import Display, Unplaceable, job_statuses, run_plan
    from premem.plan.build import build_plan
    from premem.store import StoreBusy, StoreCorrupt

    spec = _load(args.spec)
    problem = _report_folder_problem(spec.report, "report")
    if problem:  # found before any compute, not after it
        print(f"premem: {problem}; nothing was run.", file=sys.stderr)
        return EXIT_INVALID
    plan = build_plan(spec)
    store = _store(spec)
    records = store.records([j.id for j in plan.jobs]) if store.exists() else {}
    from premem.cost.memory import memory_problem

    problem = memory_problem(plan, {j.id for j in plan.jobs if j.id not in records or records[j.id].status != "done"})
    if problem:  # a train job that cannot fit its GPU: refused before any job runs
        print(f"premem: {problem}; nothing was run.", file=sys.stderr)
        return EXIT_INVALID
    problem = store_problem(spec, [j for j in plan.jobs if j.id not in records or records[j.id].status != "done"])
    if problem:
        print(f"premem: {problem}; nothing was run.", file=sys.stderr)
        return EXIT_FAILED
    from premem.tracking import missing_libraries

    problem = missing_libraries(spec)
    if problem:  # a tracker named but not installed: said before any compute, not after it
        print(f"premem: {problem}; nothing was run.", file=sys.stderr)
        return EXIT_INVALID
    try:
        store.acquire()
    except StoreBusy as e:
        print(f"premem: {e}", file=sys.stderr)
        return EXIT_FAILED
    watcher = _InterruptWatcher()
    tracking = None
    try:
        store.check()
        store.clean_staging()
        if spec.tracking is not None:
            from premem.tracking import Tracking

            tracking = Tracking(plan, store)
            tracking.catch_up()  # what an earlier apply recorded but did not log
        status = job_statuses(plan, store)
        todo = [j for j in plan.jobs if j.kind != "analysis" and status[j.id] not in ("done", "diverged", "skipped")]
        analysis = plan.jobs[-1]
        if not todo:
            print(f"Nothing to do: all {len(plan.jobs) - 1} jobs are done. Rebuilding the report.")
        else:
            print(f"Plan: {len(todo)} to run, {len(plan.jobs) - 1 - len(todo)} done. ({_runs_text(plan)})")
        t0 = time.time()
        outcome = run_plan(plan, store, address=args.address, display=Display(len(todo)),
                           on_record=tracking.landed if tracking is not None else None)
        complete = not outcome.failed and not outcome.blocked
        path = _write_report(spec, plan, store, args.spec, headline=True,
                             on_summary=tracking.log_summary if tracking is not None and complete else None)
        if complete:
            store.record(analysis, "done", result={"report": str(path)})
        msg = f"Report: {path}"
        if todo:
            msg = (f"Applied: {len(outcome.done)} done, {len(outcome.failed)} failed, "
                   f"{len(outcome.blocked)} not started, in {time.time() - t0:.0f}s. " + msg)
        print(msg)
        stopped = job_statuses(plan, store)
        for jid in (j for j, st in stopped.items() if st == "diverged"):
            job, d = plan.job(jid), store.records([jid])[jid].result["diverged"]
            n_skip = sum(1 for j in plan.jobs if j.run == job.run and stopped[j.id] == "skipped")
            print(f"Diverged: {job.run} at step {d['step']} (epoch {d['epoch']}, loss {d['loss']}); "
                  f"its {n_skip} later jobs are skipped.")
        if outcome.failed:
            print("Failed jobs (see `premem status`):", file=sys.stderr)
            for jid, err in outcome.failed.items():
                print(f"  {plan.job(jid).label}: {err}", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    except Unplaceable as e:
        print(f"premem: {e}; nothing was run.", file=sys.stderr)
        return EXIT_FAILED
    except StoreCorrupt as e:
        print(f"premem: {e}", file=sys.stderr)
        return EXIT_FAILED
    except sqlite3.OperationalError as e:  # e.g. the disk filled up under the store
        why = str(e)
        try:  # SQLite reports a write that hit a full disk as "disk I/O error" as often as "disk is full"
            free = shutil.disk_usage(store.root).free
            if free < 1 << 20:
                why += f" (the file system under the store is full: {free:,} bytes free)"
        except OSError:
            pass
        print(f"premem: cannot write the results database {store.db_path}: {why}. Jobs recorded before this are "
              "kept; `premem apply` again continues once it can write.", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if tracking is not None:
            tracking.close()
        watcher.stop()
        store.release()


INTERRUPTED = "\nInterrupted: finished jobs are kept; `premem apply` again continues."


class _InterruptWatcher:
    """Makes one Ctrl-C always stop `apply`. Ray can swallow a SIGINT (its DeferSigint drops one that arrives in
    a section that then raises) and the main thread can sit in Ray's C++ code where no Python signal handler
    runs. So SIGINT is blocked in every thread (Ray's threads, started later, inherit the mask) and a watcher
    thread takes it with sigtimedwait: it raises KeyboardInterrupt in the main thread (the orderly stop: running
    jobs cancelled, the lock released), and if the process is still there `GRACE` seconds later it exits with
    130 itself. Nothing is lost either way: the store records each finished job in its own transaction."""

    GRACE = 15.0

    def __init__(self):
        import threading

        self._stop = threading.Event()
        self._old = None
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
            return  # in-process callers off the main thread (tests) keep the default behaviour
        self._old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        threading.Thread(target=self._watch, name="premem-interrupt", daemon=True).start()

    def _watch(self) -> None:
        import _thread

        while not self._stop.is_set():
            if signal.sigtimedwait({signal.SIGINT}, 0.5) is None:
                continue
            _thread.interrupt_main()  # KeyboardInterrupt in the main thread at its next Python instruction
            if self._stop.wait(self.GRACE):
                return
            print(INTERRUPTED + " (stopped without waiting for Ray)", file=sys.stderr, flush=True)
            os._exit(EXIT_INTERRUPTED)

    def stop(self) -> None:
        """Stop watching and give SIGINT back to the main thread."""
        self._stop.set()
        if self._old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old)
            self._old = None


def cmd_schema(args) -> int:
    from premem.spec.schema import json_schema

    if getattr(args, "markdown", False):  # docs/SPEC.md
        from premem.spec.doc import render
        print(render(), end="")
        return EXIT_OK
    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _ci(ci) -> str:
    return "n/a" if ci is None else "[" + ", ".join(_num(x) for x in ci) + "]"


def print_headline(summary: dict) -> None:
    """Print p and R^2 of PreMemAcc and train accuracy, for the study and each block; below each, where the
    summary has them, their bootstrap intervals (summary['intervals']) and the leave-one-run-out minimum."""
    from premem.analysis.results import block_label

    pm, tr, blocks = summary["premem"], summary["train_acc"], summary["blocks"]
    iv = summary.get("intervals")

    def extra(d: dict, train: dict, indent: str) -> None:
        parts = []
        if iv:
            parts.append(f"{iv['level']:.0%} intervals: " + (f"p {_ci(d.get('p_ci'))}, " if d.get("p") is not None
                                                              else "") +
                         f"R^2 {_ci(d.get('r2_ci'))}, fitted line {_ci(d.get('r2_line_ci'))}, train accuracy R^2 "
                         f"{_ci(train.get('r2_ci'))}")
        lo = d.get("loro")
        if lo and lo.get("min_r2") is not None:
            parts.append(f"leaving one run out, R^2 is at least {lo['min_r2']:.3f} (without {lo['run']})")
        if parts:
            print(indent + "; ".join(parts) + ".")

    if iv:
        print(f"Intervals: {iv['level']:.0%} {iv['method']}, {iv['resamples']:,} resamples (seed {iv['seed']}) of the "
              f"{iv['resampled']}.")
    if len(blocks) > 1 and pm["p"] is None:
        print(f"PreMemAcc, p calibrated per (model, dataset) block: R^2 = {_num(pm['r2'])} over every checkpoint at "
              f"its block's p; train accuracy: R^2 = {_num(tr['r2'])}.")
    else:
        print(f"PreMemAcc: p = {_num(pm['p'])}, R^2 = {_num(pm['r2'])}; train accuracy: R^2 = {_num(tr['r2'])}.")
    extra(pm, tr, "  ")
    if len(blocks) > 1:
        for b in blocks:
            print(f"  {block_label((b['model'], b['dataset']))}: p = {_num(b['p'])}, R^2 = {_num(b['r2'])} (fitted line "
                  f"{_num(b['r2_line'])}), train accuracy R^2 = {_num(b['train_acc']['r2'])}; "
                  f"{counted(b['checkpoints'], 'checkpoint')} of {counted(len(b['runs']), 'run')}.")
            extra(b, b["train_acc"], "    ")


def cmd_analyze(args) -> int:
    """`premem analyze`: the flags checked and printed here; reading, analysis and the report are premem.api's."""
    from premem import api
    from premem.analysis.results_table import TableError

    t0 = time.time()
    try:
        opts = api.options(p=args.p, p_grid=args.p_grid, fit=args.fit, pooled=args.pooled,
                           calibrate_on=args.calibrate_on, ci_level=args.ci_level, resamples=args.resamples,
                           ci_seed=args.ci_seed)
    except api.OptionError as e:  # named as the flag is spelled: --p-grid, --ci-level
        print(f"premem: --{e.option.replace('_', '-')}{e.problem}; nothing was written.", file=sys.stderr)
        return EXIT_INVALID
    problem = _report_folder_problem(args.out, "--out", typed=True)
    if problem:
        print(f"premem: {problem}; nothing was written.", file=sys.stderr)
        return EXIT_INVALID
    command = " ".join(["premem analyze", args.results] + (["--runs", args.runs] if args.runs else [])
                       + [f"--p-grid={opts.grid_text}"] + ([f"--p={args.p:g}"] if args.p is not None else [])
                       + ([f"--fit={args.fit}"] if args.fit != "identity" else [])
                       + (["--pooled"] if args.pooled else [])
                       + (["--calibrate-on", *args.calibrate_on] if args.calibrate_on else [])
                       + ([f"--ci-level={args.ci_level:g}"] if args.ci_level != 0.95 else [])
                       + ([f"--resamples={args.resamples}"] if args.resamples != 1000 else [])
                       + ([f"--ci-seed={args.ci_seed}"] if args.ci_seed else []))
    try:
        res = api.read(args.results, args.runs)
        text = api.describe(res, opts, command)  # checks --calibrate-on's runs too
    except TableError as e:
        for line in e.lines():
            print(line, file=sys.stderr)
        print(f"{e.path}: {e.total} problem{'s' if e.total != 1 else ''}; nothing was written.", file=sys.stderr)
        return EXIT_INVALID
    analysis = api.analyze_results(res, opts, {"name": Path(args.results).name, "path": args.results, "text": text})
    summary = analysis.summary
    kept: list[str] = []
    path = analysis.write_report(args.out, kept=kept)
    _print_kept(kept)
    n_cps = sum(len(r.epochs) for r in res.runs)
    print(f"Read {counted(res.n_rows, 'row')}: {counted(len(res.runs), 'run')}, {counted(n_cps, 'checkpoint')}.")
    print_headline(summary)
    for note in summary["notes"]:
        print(f"Note: {note}")
    print(f"Report: {path} (in {time.time() - t0:.1f}s)")
    return EXIT_OK


def _export_problem(out: str, spec, spec_path: str) -> str | None:
    """Why `premem export` must not write the table to `out` (None if it may): a place
    :func:`premem.paths.file_problem` refuses, anything inside the store (its database above all), the spec
    itself."""
    from premem.paths import file_problem, inside, resolved

    problem = file_problem(out)
    if problem:
        return problem
    full = resolved(out)
    if inside(full, resolved(spec.store)):
        return (f"{out!r} is inside the store ({spec.store}): premem never writes over its own results; choose "
                "another file")
    if full == resolved(spec_path):
        return f"{out!r} is the spec itself; choose another file"
    return None


def cmd_export(args) -> int:
    from premem.analysis.results_table import export_curation_table, export_extra_table, export_table, write_table
    from premem.paths import safe_file_name
    from premem.plan.build import build_plan

    spec = _load(args.spec)
    fmt = args.format or ("csv" if args.out and args.out.lower().endswith(".csv") else "parquet")
    # the default name comes from the spec's `name`, which may hold anything (`../x`): made one plain file name
    out = args.out if args.out is not None else f"{safe_file_name(spec.name)}-{args.table}.{fmt}"
    problem = _export_problem(out, spec, args.spec)
    if problem:
        print(f"premem: --out: {problem}; nothing was written.", file=sys.stderr)
        return EXIT_INVALID
    store = _store(spec)
    if not store.exists():
        print(f"no results yet in {store.root}: run `premem apply {args.spec}` first", file=sys.stderr)
        return EXIT_FAILED
    plan = build_plan(spec)
    if args.table == "results":
        table = export_table(plan, store)
    elif args.table == "curation":
        table = export_curation_table(plan, store)
    else:
        table = export_extra_table(plan, store, args.table)
    if table.num_rows == 0:
        what = {"results": "finished checkpoints of grid runs", "perturbations": "finished perturbed-prompt samples "
                "(the spec's `perturbations:` section)", "atc": "finished ATC scores (the spec's `metrics.atc`)",
                "curation": "collected examples (the spec's `curation:` section)"}
        print(f"no {what[args.table]} in {store.root} yet: nothing to export", file=sys.stderr)
        return EXIT_FAILED
    write_table(table, Path(out), fmt)
    runs = len(set(table.column("run").to_pylist()))
    print(f"Exported {counted(table.num_rows, 'row')} ({counted(runs, 'run')}) to {out}")
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    """argparse with premem's exit code for a bad command line (EXIT_INVALID, not argparse's 2, which premem
    uses for work that failed) and a one-line message."""

    def error(self, message):
        self.exit(EXIT_INVALID, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="premem", description="Studies of how finetuning dynamics predict generalization: one YAML "
                 "spec, a grid of runs, a PreMemAcc report.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def verb(name, fn, help_):
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn)
        return p

    verb("validate", cmd_validate, "check specs and print every problem as FILE:LINE: field: message").add_argument(
        "specs", nargs="+", metavar="SPEC", help="one spec or more (premem validate specs/*.yaml); exit 1 if any "
                                                 "has a problem")
    p = verb("plan", cmd_plan, "show the jobs `apply` would run and which are done, without running anything")
    p.add_argument("spec")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--cost", nargs="?", const="", default=None, metavar="THROUGHPUTS.yaml",
                   help="print the compute hours of the jobs to run and of the whole study, premem's way and the "
                        "authors', from throughputs in this file (see premem/cost/throughputs-example.yaml); without a "
                        "file, the CPU figures measured for the built-in model")
    p = verb("apply", cmd_apply, "run what is missing (as Ray tasks) and write the report")
    p.add_argument("spec")
    p.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    verb("status", cmd_status, "per job: done, running, failed (with its error) or not started").add_argument("spec")
    verb("report", cmd_report, "rebuild the report from stored results, without compute").add_argument("spec")
    verb("schema", cmd_schema, "print the spec's JSON Schema").add_argument(
        "--markdown", action="store_true", help="the same as Markdown tables instead (docs/SPEC.md)")
    p = verb("analyze", cmd_analyze, "PreMemAcc and the report from per-example results computed elsewhere "
             "(a Parquet, CSV or JSONL table; see README, 'Bring your own evaluations')")
    p.add_argument("results", help="the results table: one row per run, checkpoint, split and example")
    p.add_argument("--runs", default=None, help="a table of run settings keyed by `run` (Parquet, CSV or JSONL)")
    p.add_argument("--p-grid", default=None, metavar="START:STOP:STEP",
                   help="thresholds p on the log(log(perplexity)) scale (default -3:-0.5:0.05)")
    p.add_argument("--p", type=float, default=None, help="use this p instead of calibrating")
    p.add_argument("--fit", choices=("identity", "line"), default="identity",
                   help="calibrate by R^2 about y = x (identity, default) or of a fitted line")
    p.add_argument("--pooled", action="store_true",
                   help="calibrate one p on all calibration runs together (default: one p per (model, dataset) "
                        "block, from the table's model and dataset columns)")
    p.add_argument("--calibrate-on", nargs="+", default=None, metavar="RUN",
                   help="runs that calibrate p: names, or selectors key=value[,key=value] on run settings "
                        "(default: all runs)")
    p.add_argument("--ci-level", type=float, default=0.95,
                   help="coverage of the bootstrap intervals (default 0.95)")
    p.add_argument("--resamples", type=int, default=1000,
                   help="bootstrap resamples of the train and test examples (default 1000; 0: no intervals)")
    p.add_argument("--ci-seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--out", default="reports", help="the report's folder (default: reports)")
    p = verb("export", cmd_export, "write every per-example result of a spec's finished checkpoints as one "
             "table, in the format `premem analyze` reads")
    p.add_argument("spec")
    p.add_argument("--format", choices=("parquet", "csv"), default=None,
                   help="default: parquet (csv if --out ends in .csv)")
    p.add_argument("--table", choices=("results", "perturbations", "atc", "curation"), default="results",
                   help="results (default): every evaluated example at every checkpoint, the table `premem "
                        "analyze` reads; perturbations: accuracy per example under each perturbed prompt; atc: "
                        "the greedy sample's log-probability per example and checkpoint; curation: every example "
                        "each curation strategy collected, with its round and original")
    p.add_argument("--out", default=None, help="the file to write, in an existing folder (default: <spec "
                   "name>-<table>.<format> in the working directory, the name made a plain file name)")
    return ap


#: options whose value may start with '-' (a negative number, a grid of them)
NUMERIC_OPTIONS = ("--p", "--p-grid")


def _numeric(text: str) -> bool:
    """True when `text` reads as a number or a START:STOP:STEP grid of numbers, in any float notation
    (-7.5e-1, -.5, -1E3, -inf)."""
    try:
        for part in text.split(":"):
            float(part)
    except ValueError:
        return False
    return True


def _join_negative_values(argv: list[str]) -> list[str]:
    """`--p -7.5e-1` as `--p=-7.5e-1` and `--p-grid -3:-0.5:0.05` as `--p-grid=-3:-0.5:0.05`: argparse takes a
    value that starts with '-' for an option unless it looks like a plain negative decimal (no exponent)."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--":  # everything after it is positional
            out += argv[i:]
            break
        # an option argparse would take as one of them: its name, or a prefix only one of them starts with
        prefix_of = [o for o in NUMERIC_OPTIONS if o.startswith(a)] if a.startswith("--") else []
        numeric = a in NUMERIC_OPTIONS or len(prefix_of) == 1
        if numeric and i + 1 < len(argv) and argv[i + 1].startswith("-") and _numeric(argv[i + 1]):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (EXIT_*). Every failure is one line on stderr, never a traceback
    (set PREMEM_DEBUG=1 to see the traceback of an unexpected error)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(_join_negative_values(argv))
    from premem.report.folder import ReportFolderError
    from premem.store import StoreCorrupt

    try:
        return args.fn(args)
    except StoreCorrupt as e:  # a damaged premem.db: said plainly, never read as data
        print(f"premem: {escape_controls(str(e))}", file=sys.stderr)
        return EXIT_FAILED
    except ReportFolderError as e:  # found while writing (checked before any work too)
        print(f"premem: {escape_controls(str(e))}", file=sys.stderr)
        return EXIT_INVALID
    except sqlite3.Error as e:
        print(f"premem: cannot use the results database: {escape_controls(str(e))}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:  # a file system refusal (permissions, a read-only or full disk, a file in the way)
        where = f": {e.filename}" if e.filename else ""
        print(f"premem: {escape_controls(f'{e.strerror or e}{where}')}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as e:  # a bug: one line that says so, the traceback on request
        if os.environ.get("PREMEM_DEBUG"):
            raise
        first = escape_controls(str(e).splitlines()[0]) if str(e) else ""
        print(f"premem: unexpected error ({type(e).__name__}: {first}); this is "
              "a bug in premem: rerun with PREMEM_DEBUG=1 for the traceback and report it", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
