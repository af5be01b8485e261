"""The plan stage: a spec turned into the jobs that compute its study, each with a content-hashed id.

- `build`: `build_plan(spec)` -> `Plan` (the runs and every job in dependency order), and each job's view in
  `premem plan --json`;
- `job`: `Job`, the job kinds (`JOB_KINDS`: version, resources, settings type), `content_hash` (a job's id);
- `job_settings`: the typed settings of each kind (what a job's id hashes);
- `settings`: the spec sections a job carries, resolved per run;
- `curation`: curation's rounds as `collect`, `score`, `train` and `evaluate` jobs;
- `counts`: how many jobs of each kind a spec makes, counted without building the plan (the spec's size limit).
"""
from __future__ import annotations

from premem.lazy import lazy_exports

__all__ = ["Job", "Plan", "build_plan"]
__getattr__ = lazy_exports(__name__, {"Job": "job", "Plan": "build", "build_plan": "build"})
