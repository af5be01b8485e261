"""MLflow: one MLflow run per premem run in the experiment named (the study's name by default), found again by
its `premem.run_key` tag, so a resumed apply logs into the same MLflow run."""
from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlparse

from premem.tracking.content import Point, TrackedRun

BATCH = 1000  # MLflow's log_batch takes at most 1000 metrics per call
KEY_TAG = "premem.run_key"


def resolved_uri(uri: str) -> tuple[str, bool]:
    """(the tracking URI to use, whether it is a local folder). A plain path is a folder (made absolute: the
    working directory of the apply decides, as for the store)."""
    scheme = urlparse(uri).scheme
    if scheme and len(scheme) > 1:  # http://, sqlite:///, file://, databricks...; a one-letter one is a drive
        return uri, scheme == "file"
    return str(Path(uri).resolve()), True


class MlflowBackend:
    """Logs through MlflowClient (no global active run: several runs are logged in turn)."""

    name = "mlflow"

    def __init__(self, conf, study: str):
        from mlflow.tracking import MlflowClient

        self.uri, local = resolved_uri(conf.tracking_uri)
        if local:
            # MLflow 3 keeps folder stores in maintenance mode and refuses them unless told; a folder named in
            # the spec is the user's explicit choice (sqlite:///... needs the full mlflow package)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.experiment = conf.experiment or study
        self.destination = f"mlflow:{self.uri}#{self.experiment}"
        self.client = MlflowClient(tracking_uri=self.uri)
        self._experiment_id: str | None = None
        self._runs: dict[str, str] = {}  # run key -> MLflow run id
        self.touched: set[str] = set()

    def _experiment(self) -> str:
        if self._experiment_id is None:
            e = self.client.get_experiment_by_name(self.experiment)
            self._experiment_id = e.experiment_id if e is not None else self.client.create_experiment(self.experiment)
        return self._experiment_id

    def _run_id(self, run: TrackedRun) -> str:
        """The MLflow run of `run`: the one tagged with its key, else a new one."""
        if run.key not in self._runs:
            found = self.client.search_runs([self._experiment()], filter_string=f"tags.`{KEY_TAG}` = '{run.key}'",
                                            max_results=1)
            if found:
                self._runs[run.key] = found[0].info.run_id
            else:
                self._runs[run.key] = self.client.create_run(
                    self._experiment(), run_name=run.name,
                    tags={KEY_TAG: run.key, "premem.run": run.name, "premem.study": str(run.params.get("study"))}
                ).info.run_id
        return self._runs[run.key]

    def log(self, run: TrackedRun, params: dict | None, points: list[Point]) -> None:
        """Log `params` (when given) and `points` to the run's MLflow run."""
        from mlflow.entities import Metric, Param

        rid = self._run_id(run)
        self.touched.add(rid)
        if params is not None:
            ps = [Param(k, str(v)) for k, v in params.items()]
            for i in range(0, len(ps), 100):  # MLflow takes at most 100 params per call
                self.client.log_batch(rid, params=ps[i:i + 100])
        now = int(time.time() * 1000)
        ms = [Metric(p.key, float(p.value), now, p.step) for p in points]
        for i in range(0, len(ms), BATCH):
            self.client.log_batch(rid, metrics=ms[i:i + BATCH])

    def close(self) -> None:
        for rid in self.touched:  # FINISHED; a later apply may still log into it (MLflow allows it)
            self.client.set_terminated(rid)
        self.touched.clear()
