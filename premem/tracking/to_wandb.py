"""Weights & Biases: one W&B run per premem run, its id the run's key (`resume="allow"`), so a resumed apply
reopens the same run (offline: a new offline session of the same id, merged by `wandb sync`).

Points arrive out of step order (a checkpoint's evaluation lands while the next epoch trains), and W&B drops a
`step=` lower than one already logged; so every metric is plotted against `train/step`, a value logged with it
(wandb's define_metric), never W&B's own step."""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from premem.tracking.content import Point, TrackedRun

OPEN_RUNS = 4  # W&B runs held open at once (each has its own stream to W&B's service)
STEP = "train/step"


class WandbBackend:
    """Logs with wandb.init(id=key, resume="allow", reinit="create_new") per run."""

    name = "wandb"

    def __init__(self, conf, study: str):
        import wandb

        self._wandb = wandb
        self.conf = conf
        self.project = conf.project or study
        self.dir = str(Path(conf.dir).resolve()) if conf.dir else None
        self.destination = f"wandb:{conf.entity or ''}/{self.project}"
        if conf.mode == "offline" and self.dir:  # offline runs are files: where they are is where they go
            self.destination += f"@{self.dir}"
        self._runs: dict[str, object] = {}

    def _run(self, run: TrackedRun):
        r = self._runs.pop(run.key, None)
        if r is None:
            if self.dir:
                Path(self.dir).mkdir(parents=True, exist_ok=True)
            if len(self._runs) >= OPEN_RUNS:
                self._runs.pop(next(iter(self._runs))).finish()
            self._wait_for_a_new_folder(run.key)
            # console off: W&B would otherwise wrap the driver's stdout and stderr (premem's progress display)
            r = self._wandb.init(project=self.project, entity=self.conf.entity, mode=self.conf.mode, dir=self.dir,
                                 id=run.key, name=run.name, resume="allow", reinit="create_new",
                                 group=str(run.params.get("study")),
                                 settings=self._wandb.Settings(silent=True, console="off"))
            r.define_metric(STEP)
            r.define_metric("*", step_metric=STEP)
        self._runs[run.key] = r  # most recently used last
        return r

    def _wait_for_a_new_folder(self, key: str) -> None:
        """Wait (at most about a second) until a session of run `key` started now gets a folder of its own. W&B
        names a session's folder `<mode>-<start time to the second>-<id>`: a run reopened within the second it
        was last opened in (a resumed apply right after a stop, a run closed and reopened) writes into the same
        folder, and an offline session's file there is replaced, its points lost (wandb 0.31)."""
        root = Path(self.dir or ".") / "wandb"
        for _ in range(15):
            stamp = datetime.fromtimestamp(time.time()).strftime("%Y%m%d_%H%M%S")  # W&B's format, local time
            if not any(root.glob(f"*-{stamp}-{key}")):
                return
            time.sleep(0.1)

    def log(self, run: TrackedRun, params: dict | None, points: list[Point]) -> None:
        """Log `params` (as the run's config, when given) and `points`, one history row per step."""
        r = self._run(run)
        if params is not None:
            r.config.update(params, allow_val_change=True)
        by_step: dict[int, dict] = {}
        for p in points:
            by_step.setdefault(p.step, {})[p.key] = p.value
        for step, row in by_step.items():
            r.log({STEP: step, **row})

    def close(self) -> None:
        for r in self._runs.values():
            r.finish()
        self._runs.clear()
