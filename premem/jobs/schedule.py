"""Running a plan's missing jobs as Ray tasks, with live progress, recording each result as it lands.

The driver submits a job as soon as every job it depends on is recorded done, so evaluation of epoch 1
runs while epoch 2 trains. Tasks return results; only the driver writes the store. A task that fails for
a reason in the spec or the data (`UserError`) is recorded failed at once, and so is any other exception a
job raises (retrying the same code on the same inputs gives the same error); a worker process or node that
dies is infrastructure, and Ray retries its task (WORKER_RETRIES times). Jobs that depend on a failed job
are left not started, and the other runs go on. A training job whose loss diverges is recorded done with
its `diverged` step; the rest of its run (later epochs, their evaluations) is skipped.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from premem.plan.build import Plan
from premem.plan.job import Job
from premem.safetext import escape_controls
from premem.store import Store

HEAD_RESOURCE = "node:__internal_head__"  # a resource Ray gives the head node only
WORKER_RETRIES = 3  # Ray re-runs a task whose worker process or node died this many times


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # job id -> last line of its error
    blocked: list[str] = field(default_factory=list)  # not started because a dependency failed
    diverged: dict[str, dict] = field(default_factory=dict)  # train job id -> {'epoch', 'step', 'loss'}
    skipped: list[str] = field(default_factory=list)  # later jobs of a diverged run: nothing to compute from
    seconds: float = 0.0


def last_line(text: str) -> str:
    """The last non-blank line of a job's error, as printable text: an error quoting a data file's content
    shows its control characters escaped (`\\x1b`), never raw on the terminal."""
    # lines of a traceback end in \n; splitlines() would also cut at a \r or \u2028 inside a quoted value
    lines = [ln for ln in str(text).strip().split("\n") if ln.strip()]
    return escape_controls(lines[-1].strip() if lines else str(text))


class Unplaceable(RuntimeError):
    """Jobs ask for more CPUs or GPUs than the whole cluster has: Ray would queue them forever."""


def _unplaceable(jobs: list[Job], cluster: dict) -> str:
    """A message naming the job kinds whose resource request no node of this cluster can meet ('' if none)."""
    problems = {}
    for job in jobs:
        for key, ray_key in (("cpus", "CPU"), ("gpus", "GPU")):
            want = job.resources.get(key, 0) or 0
            if want > cluster.get(ray_key, 0):
                problems[(job.kind, key)] = (want, cluster.get(ray_key, 0))
    return "; ".join(f"{kind} jobs ask for {want:g} {key} but the Ray cluster has {have:g} in all "
                     f"(resources.{kind}.{key} in the spec)" for (kind, key), (want, have) in problems.items())


def _ray():
    import ray

    return ray


def init_ray(address: str | None, spec_cpus: float | None = None) -> bool:
    """Connect to the Ray cluster at `address` (or RAY_ADDRESS), or start a local one. True if we started it."""
    ray = _ray()
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        return False
    # "local": always a Ray of our own. Without it ray.init joins whatever cluster `ray start` last recorded on this
    # machine (its /tmp/ray/ray_current_cluster), someone else's included, and then refuses our num_cpus.
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", object_store_memory=256 * 1024 * 1024)
    return True


def diverged_jobs(records) -> set[str]:
    """Ids of the recorded training jobs whose run diverged (store.records values)."""
    return {j for j, r in records.items() if r.status == "done" and r.result and r.result.get("diverged")}


def stopped_jobs(jobs: list[Job], records) -> tuple[set[str], set[str]]:
    """(diverged, skipped): the diverged training jobs among `records`, and the jobs of `jobs` (in dependency
    order) that depend on one of them, directly or not."""
    diverged = diverged_jobs(records)
    skipped: set[str] = set()
    for job in jobs:
        if job.kind != "analysis" and job.id not in diverged and any(d in diverged or d in skipped for d in job.deps):
            skipped.add(job.id)
    return diverged, skipped


def job_statuses(plan: Plan, store: Store) -> dict[str, str]:
    """{job id: 'done' | 'diverged' | 'skipped' | 'failed' | 'running' | 'to run'} for every job of the plan, as
    the store has them now ('diverged': a training job whose loss became NaN or infinite; 'skipped': a later job
    of its run; 'running': under way in an apply, by the store's attempts)."""
    running = store.running()  # before the records: a job recorded in between then shows as done
    records = store.records([j.id for j in plan.jobs])
    diverged, skipped = stopped_jobs(plan.jobs, records)
    out = {}
    for j in plan.jobs:
        rec = records.get(j.id)
        if j.id in diverged:
            out[j.id] = "diverged"
        elif j.id in skipped and (rec is None or rec.status != "done"):
            out[j.id] = "skipped"
        elif rec is not None and rec.status == "done":
            out[j.id] = "done"
        elif j.id in running:
            out[j.id] = "running"
        elif rec is not None:
            out[j.id] = "failed"
        else:
            out[j.id] = "to run"
    return out


def _remote_functions():
    ray = _ray()

    @ray.remote(num_cpus=0)  # never waits for a CPU: the driver reads it while jobs hold every core
    class ProgressBoard:
        """Latest progress line of each running job (tasks write, the driver reads)."""

        def __init__(self):
            self.lines: dict[str, str] = {}
            self.nodes: dict[str, str] = {}
            self.tries: dict[str, int] = {}

        def set(self, job_id: str, line: str) -> None:
            self.lines[job_id] = line

        def start(self, job_id: str, node: str) -> int:
            """An attempt of `job_id` starts on `node`; returns its number (1, then 2 on Ray's first retry...)."""
            self.nodes[job_id] = node
            self.tries[job_id] = self.tries.get(job_id, 0) + 1
            return self.tries[job_id]

        def read(self) -> tuple[dict[str, str], dict[str, str]]:
            return dict(self.lines), dict(self.nodes)

    @ray.remote
    def run_job(job: Job, store_root: str, board, expected: dict | None = None) -> dict:
        import ray as _r

        from premem.jobs.context import UserError
        from premem.jobs.runners import execute
        from premem.store import CorruptArtifact

        node = _r.get_runtime_context().get_node_id()
        try:  # this attempt's number and node (a retry may run elsewhere)
            attempt = _r.get(board.start.remote(job.id, node), timeout=60)
        except Exception:  # the board is bookkeeping: a job never fails because of it
            attempt = None

        last = [0.0]

        def progress(line: str) -> None:
            now = time.time()
            if now - last[0] >= 0.5:
                last[0] = now
                board.set.remote(job.id, line)

        started = time.time()
        try:
            result = execute(job, store_root, progress, expected)
        except UserError as e:
            return {"error": f"{e}", "user_error": True, "started": started, "node": node, "attempt": attempt}
        except CorruptArtifact as e:
            return {"error": f"{e}", "corrupt": e.job_id, "started": started, "node": node, "attempt": attempt}
        return {"result": result, "started": started, "node": node, "attempt": attempt}

    return ProgressBoard, run_job


class Display:
    """Live progress: a redrawn status block on a terminal, periodic plain lines otherwise."""

    def __init__(self, total: int, stream=None, interval: float = 10.0):
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval
        self._last = 0.0
        self._drawn = 0

    def event(self, text: str) -> None:
        self._clear()
        print(text, file=self.stream, flush=True)

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\x1b[2K\x1b[1A" * self._drawn + "\x1b[2K\r")
            self._drawn = 0

    def update(self, outcome: Outcome, running: dict[str, tuple[str, str | None]], force: bool = False) -> None:
        """Show counts and the progress line of every job that has reported one (None: still queued)."""
        now = time.time()
        if not self.tty and not force and now - self._last < self.interval:
            return
        self._last = now
        active = {k: v for k, v in running.items() if v[1] is not None}
        queued = len(running) - len(active)
        head = (f"[{len(outcome.done)}/{self.total} done, {len(active)} running, {queued} queued, "
                f"{len(outcome.failed)} failed, {time.strftime('%H:%M:%S')}]")
        lines = [head] + [f"  {label}: {line}" for label, line in active.values()]
        if self.tty:
            self._clear()
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
            self._drawn = len(lines)
        else:
            print("\n".join(lines), file=self.stream, flush=True)

    def close(self) -> None:
        self._clear()


def run_plan(plan: Plan, store: Store, address: str | None = None, display: Display | None = None,
             on_record: Callable[[Job], None] | None = None) -> Outcome:
    """Run every job of `plan` that the store does not hold as done (analysis excluded); return the outcome."""
    from premem.store import CHECKSUM_KEY

    ray = _ray()
    t0 = time.time()
    records = store.records([j.id for j in plan.jobs])
    done = {j for j, r in records.items() if r.status == "done"}
    stopped, skipped = stopped_jobs(plan.jobs, records)  # diverged runs' jobs, and the rest of their runs
    stopped |= skipped
    sums = {j: r.result[CHECKSUM_KEY] for j, r in records.items() if r.result and CHECKSUM_KEY in r.result}
    todo = [j for j in plan.jobs if j.kind != "analysis" and j.id not in done and j.id not in skipped]
    outcome = Outcome(skipped=[j.id for j in plan.jobs if j.id in skipped and j.id not in done])
    if not todo:
        return outcome
    display = display or Display(len(todo))
    started_ray = init_ray(address)
    unplaceable = _unplaceable(todo, ray.cluster_resources())
    if unplaceable:
        if started_ray:  # nothing will ever add a node to a Ray premem started itself
            ray.shutdown()
            raise Unplaceable(unplaceable)
        # a cluster's autoscaler adds nodes for jobs that wait (cluster.yaml); Ray queues them meanwhile
        display.event(f"premem: note: {unplaceable} now; submitting anyway: the cluster's autoscaler can add "
                      "such nodes (without one these jobs wait; Ctrl-C stops)")
    ProgressBoard, run_job = _remote_functions()
    # the board lives on the head node (Ray marks it with this resource), so that losing a worker node (a spot
    # instance) never loses it; without the head the cluster is gone anyway
    board = ProgressBoard.options(resources={HEAD_RESOURCE: 0.001}).remote()
    pending: dict = {}
    nodes_seen: dict[str, str] = {}
    failed: set[str] = set()
    waiting = list(todo)
    store_root = str(store.root.resolve())
    try:
        while waiting or pending:
            still = []
            submitted = []
            for job in waiting:
                if any(d in stopped for d in job.deps):
                    stopped.add(job.id)  # its run diverged before it: there is nothing to compute it from
                    outcome.skipped.append(job.id)
                elif any(d in failed for d in job.deps):
                    failed.add(job.id)  # its inputs will never exist
                    outcome.blocked.append(job.id)
                elif all(d in done for d in job.deps):
                    res = job.resources
                    ref = run_job.options(num_cpus=res.get("cpus", 1), num_gpus=res.get("gpus", 0),
                                          max_retries=WORKER_RETRIES, retry_exceptions=False,
                                          name=job.label).remote(job, store_root, board,
                                                                 {d: sums[d] for d in job.deps if d in sums})
                    pending[ref] = job
                    submitted.append(job.id)
                else:
                    still.append(job)
            waiting = still
            if submitted:
                store.mark_started(submitted)
            if not pending:
                # what still waits depends on a job that will not be done in this apply (a damaged checkpoint's
                # job, forgotten so that the next apply recomputes it): say so rather than drop it
                outcome.blocked.extend(j.id for j in waiting)
                break
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except Exception as e:  # infrastructure failure after retries, or a bug in premem
                    err = last_line(getattr(e, "cause", None) and repr(e.cause) or traceback.format_exc())
                    store.record(job, "failed", error=str(e), started=None)
                    failed.add(job.id)
                    outcome.failed[job.id] = err
                    display.event(f"FAILED {job.label}: {err}")
                    continue
                if "error" in out:
                    if out.get("corrupt"):  # a damaged checkpoint: forget its job so that the next apply redoes it
                        store.forget(out["corrupt"])
                        done.discard(out["corrupt"])
                        out["error"] += ("; its job is no longer recorded done, so the next `premem apply` "
                                         "computes it again")
                    store.record(job, "failed", error=out["error"], started=out["started"], node=out.get("node"),
                                 tries=out.get("attempt"))
                    failed.add(job.id)
                    outcome.failed[job.id] = last_line(out["error"])
                    display.event(f"FAILED {job.label}: {last_line(out['error'])}")
                    continue
                result = out["result"]
                examples = result.pop("_examples", None)
                store.record(job, "done", result=result, examples=examples, started=out["started"],
                             node=out.get("node"), tries=out.get("attempt"))
                done.add(job.id)
                if CHECKSUM_KEY in result:
                    sums[job.id] = result[CHECKSUM_KEY]
                if result.get("diverged"):
                    stopped.add(job.id)
                    outcome.diverged[job.id] = result["diverged"]
                    display.event(f"DIVERGED {job.label}: loss {result['diverged']['loss']} at step "
                                  f"{result['diverged']['step']}; the rest of this run is skipped")
                else:
                    outcome.done.append(job.id)
                    display.event(f"done {job.label} ({time.time() - out['started']:.0f}s)")
                if on_record:
                    on_record(job)
            try:
                lines, nodes = ray.get(board.read.remote(), timeout=10) if pending else ({}, {})
            except (ray.exceptions.RayError, OSError):
                # progress is a nicety: a board that is slow, gone, or unreachable for a moment (Ray 2.40 raised
                # OSError 'Broken pipe' here while a node was being lost) must never stop the work
                lines, nodes = {}, {}
            fresh = {j: n for j, n in nodes.items() if nodes_seen.get(j) != n and j in
                     {pj.id for pj in pending.values()}}
            if fresh:
                store.mark_node(fresh)
                nodes_seen.update(fresh)
            display.update(outcome, {ref.hex(): (j.label, lines.get(j.id)) for ref, j in pending.items()})
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        display.close()
        raise
    finally:
        outcome.seconds = time.time() - t0
        if started_ray:
            ray.shutdown()
    display.close()
    return outcome
