"""premem's command line: validate, plan, apply, status, report, schema."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from premem.spec import SpecError, load_spec

EXIT_OK, EXIT_INVALID, EXIT_FAILED = 0, 1, 2


def _load(path: str):
    """The spec, or exit 1 after printing every problem with file:line."""
    try:
        return load_spec(path)
    except SpecError as e:
        for p in e.problems:
            print(str(p), file=sys.stderr)
        n = len(e.problems)
        print(f"{path}: {n} problem{'s' if n != 1 else ''}; nothing was run.", file=sys.stderr)
        raise SystemExit(EXIT_INVALID) from None


def _store(spec):
    from premem.store import Store

    return Store(Path(spec.store))


def _statuses(plan, store) -> dict[str, str]:
    """'done' | 'failed' | 'running' | 'to run' for every job of the plan."""
    records = store.records([j.id for j in plan.jobs])
    running = store.running()
    out = {}
    for j in plan.jobs:
        rec = records.get(j.id)
        if rec is not None and rec.status == "done":
            out[j.id] = "done"
        elif j.id in running:
            out[j.id] = "running"
        elif rec is not None:
            out[j.id] = "failed"
        else:
            out[j.id] = "to run"
    return out


def cmd_validate(args) -> int:
    spec = _load(args.spec)
    from premem.plan import build_plan

    plan = build_plan(spec)
    print(f"{args.spec}: valid. {len(plan.runs)} runs, {len(plan.jobs)} jobs.")
    return EXIT_OK


def cmd_plan(args) -> int:
    from premem.plan import build_plan, job_view

    spec = _load(args.spec)
    plan = build_plan(spec)
    status = _statuses(plan, _store(spec))
    if args.json:
        print(json.dumps({"spec": spec.name, "runs": [r.settings() | {"name": r.name} for r in plan.runs],
                          "jobs": [job_view(j, status[j.id]) for j in plan.jobs]}, indent=2))
        return EXIT_OK
    for j in plan.jobs:
        print(f"  {j.short}  {j.kind:<9} {status[j.id]:<7} {j.label}")
    n_run = sum(1 for s in status.values() if s != "done")
    print(f"Plan: {n_run} to run, {len(status) - n_run} done. ({len(plan.runs)} runs)")
    return EXIT_OK


def cmd_status(args) -> int:
    from premem.plan import build_plan

    spec = _load(args.spec)
    plan = build_plan(spec)
    store = _store(spec)
    records = store.records([j.id for j in plan.jobs])
    status = _statuses(plan, store)
    counts: dict[str, int] = {}
    for j in plan.jobs:
        st = status[j.id]
        counts[st] = counts.get(st, 0) + 1
        shown = "not started" if st == "to run" else st
        line = f"  {j.short}  {shown:<11} {j.label}"
        if st == "failed":
            from premem.schedule import last_line

            line += f"  -- {last_line(records[j.id].error or '')}"
        print(line)
    print(", ".join(f"{v} {'not started' if k == 'to run' else k}" for k, v in sorted(counts.items())))
    return EXIT_OK


def _write_report(spec, plan, store, spec_path: str) -> Path:
    from premem.analysis import analyze_plan
    from premem.report.html import write_report

    summary, dynamics = analyze_plan(plan, store, spec_path)
    return write_report(summary, dynamics, Path(spec.report))


def cmd_report(args) -> int:
    from premem.plan import build_plan

    spec = _load(args.spec)
    plan = build_plan(spec)
    store = _store(spec)
    if not store.exists():
        print(f"no results yet in {store.root}: run `premem apply {args.spec}` first", file=sys.stderr)
        return EXIT_FAILED
    path = _write_report(spec, plan, store, args.spec)
    print(f"report: {path}")
    return EXIT_OK


def cmd_apply(args) -> int:
    from premem.plan import build_plan
    from premem.schedule import Display, run_plan
    from premem.store import StoreBusy

    spec = _load(args.spec)
    plan = build_plan(spec)
    store = _store(spec)
    try:
        store.acquire()
    except StoreBusy as e:
        print(f"premem: {e}", file=sys.stderr)
        return EXIT_FAILED
    try:
        store.clean_staging()
        status = _statuses(plan, store)
        todo = [j for j in plan.jobs if j.kind != "analysis" and status[j.id] != "done"]
        analysis = plan.jobs[-1]
        if not todo:
            print(f"Nothing to do: all {len(plan.jobs) - 1} jobs are done. Rebuilding the report.")
        else:
            print(f"Plan: {len(todo)} to run, {len(plan.jobs) - 1 - len(todo)} done. ({len(plan.runs)} runs)")
        t0 = time.time()
        outcome = run_plan(plan, store, address=args.address, display=Display(len(todo)))
        path = _write_report(spec, plan, store, args.spec)
        if not outcome.failed and not outcome.blocked:
            store.record(analysis, "done", result={"report": str(path)})
        msg = f"Report: {path}"
        if todo:
            msg = (f"Applied: {len(outcome.done)} done, {len(outcome.failed)} failed, "
                   f"{len(outcome.blocked)} not started, in {time.time() - t0:.0f}s. " + msg)
        print(msg)
        if outcome.failed:
            print("Failed jobs (see `premem status`):", file=sys.stderr)
            for jid, err in outcome.failed.items():
                print(f"  {plan.job(jid).label}: {err}", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    except KeyboardInterrupt:
        print("\nInterrupted: finished jobs are kept; `premem apply` again continues.", file=sys.stderr)
        return 130
    finally:
        store.release()


def cmd_schema(args) -> int:
    from premem.spec import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="premem", description="Studies of how finetuning dynamics predict "
                                 "generalization: one YAML spec, a grid of runs, a PreMemAcc report.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def verb(name, fn, help_):
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn)
        return p

    verb("validate", cmd_validate, "check a spec and print every problem as FILE:LINE: field: message").add_argument("spec")
    p = verb("plan", cmd_plan, "show the jobs `apply` would run and which are done, without running anything")
    p.add_argument("spec")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p = verb("apply", cmd_apply, "run what is missing (as Ray tasks) and write the report")
    p.add_argument("spec")
    p.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    verb("status", cmd_status, "per job: done, running, failed (with its error) or not started").add_argument("spec")
    verb("report", cmd_report, "rebuild the report from stored results, without compute").add_argument("spec")
    verb("schema", cmd_schema, "print the spec's JSON Schema")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
