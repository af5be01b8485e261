"""The wall-clock time of a plan on a cluster of G GPUs and C CPUs: its dependency graph replayed with greedy list
scheduling (`wall_clock`), premem's way (a checkpoint's jobs start when its epoch is trained) or the authors'."""
from __future__ import annotations

import heapq

from premem.cost.work import EVAL_KINDS, kind_resources
from premem.plan.build import Plan


def wall_clock(plan: Plan, seconds: dict[str, float], gpus: int, cpus: int, serialize: bool) -> float:
    """Hours until every job is done on a cluster of `gpus` GPUs and `cpus` CPUs: greedy list scheduling in plan
    order of the dependency graph (`serialize`: a checkpoint's jobs also wait for the run's last epoch).

    Each time a job ends, the jobs whose inputs are all done start in plan order, each that fits in what is
    free. Free resources only shrink while jobs start, so that is the same as repeatedly starting the
    earliest-planned ready job that fits; ready jobs are kept in one heap per resource request (a job kind's),
    so the replay costs O(jobs log jobs) however many jobs wait, not a scan of every waiting job per event."""
    jobs = [j for j in plan.jobs if j.kind != "analysis"]
    last_train: dict[str, str] = {}
    for j in jobs:
        if j.kind == "train":
            last_train[j.run] = j.id
    order = {j.id: i for i, j in enumerate(jobs)}
    waiting_on: dict[str, int] = {}  # job -> how many of its inputs are not done yet
    dependents: dict[str, list[str]] = {}
    for j in jobs:
        d = set(j.deps)
        if serialize and j.kind in EVAL_KINDS:
            d.add(last_train[j.run])
        d = {x for x in d if x in seconds}
        waiting_on[j.id] = len(d)
        for x in d:
            dependents.setdefault(x, []).append(j.id)
    need_of_kind = {}
    for kind in {j.kind for j in jobs}:
        res = kind_resources(plan.spec, kind)
        need_of_kind[kind] = (min(res.gpus, gpus) if res.gpus else 0.0, min(res.cpus, cpus))
    need = {j.id: need_of_kind[j.kind] for j in jobs}
    ready: dict[tuple[float, float], list[int]] = {n: [] for n in need_of_kind.values()}  # plan indexes
    for j in jobs:
        if not waiting_on[j.id]:
            heapq.heappush(ready[need[j.id]], order[j.id])
    running: list[tuple[float, str]] = []
    t, free_g, free_c = 0.0, float(gpus), float(cpus)
    left = len(jobs)
    while left:
        while True:  # start the earliest-planned ready job that fits, as long as one does
            fits = [(q[0], n) for n, q in ready.items() if q and n[0] <= free_g + 1e-9 and n[1] <= free_c + 1e-9]
            if not fits:
                break
            _, n = min(fits)
            jid = jobs[heapq.heappop(ready[n])].id
            free_g, free_c = free_g - n[0], free_c - n[1]
            heapq.heappush(running, (t + seconds[jid], jid))
        if not running:
            break  # nothing can start (cannot happen with valid resources)
        t, jid = heapq.heappop(running)
        left -= 1
        free_g, free_c = free_g + need[jid][0], free_c + need[jid][1]
        for x in dependents.get(jid, ()):
            waiting_on[x] -= 1
            if not waiting_on[x]:
                heapq.heappush(ready[need[x]], order[x])
    return t / 3600
