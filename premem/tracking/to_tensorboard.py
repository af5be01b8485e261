"""TensorBoard: one folder of event files per run, `<log_dir>/<run name>/<run key>`, so TensorBoard lists runs
by their names and a resumed apply appends to the same run (a new event file in the same folder)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from premem.tracking.content import Point, TrackedRun

OPEN_WRITERS = 32  # event files held open at once (a writer per run; the oldest is closed beyond this)


def run_folder(log_dir: Path, run: TrackedRun) -> Path:
    """The folder of a run's event files: its name's parts made safe as folder names, then its key."""
    parts = [re.sub(r"[^A-Za-z0-9._=+-]", "_", p) for p in run.name.split("/")]
    parts = [p if p.strip(".") else p.replace(".", "_") for p in parts]  # never '.' or '..'
    return log_dir.joinpath(*parts, run.key)


class TensorBoardBackend:
    """Writes scalars (and a run's settings as hparams and text) with torch's SummaryWriter."""

    name = "tensorboard"

    def __init__(self, conf):
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        self._writer_type = SummaryWriter
        self.log_dir = Path(conf.log_dir).resolve()
        self.destination = f"tensorboard:{self.log_dir}"
        self._writers: dict[str, object] = {}

    def _writer(self, run: TrackedRun):
        w = self._writers.pop(run.key, None)
        if w is None:
            if len(self._writers) >= OPEN_WRITERS:
                oldest = next(iter(self._writers))
                self._writers.pop(oldest).close()
            w = self._writer_type(log_dir=str(run_folder(self.log_dir, run)))
        self._writers[run.key] = w  # most recently used last
        return w

    def log(self, run: TrackedRun, params: dict | None, points: list[Point]) -> None:
        """Write `params` (when given) and `points` to the run's event files, flushed before returning (the
        ledger then records them as logged)."""
        from torch.utils.tensorboard.summary import hparams

        w = self._writer(run)
        if params is not None:
            # the HParams dashboard's view of the run, and the same as readable text
            for summary in hparams(params, {}):
                w.file_writer.add_summary(summary)
            w.add_text("premem/settings", "```\n" + json.dumps(params, indent=1, sort_keys=True) + "\n```")
        for p in points:
            w.add_scalar(p.key, p.value, global_step=p.step)
        w.flush()

    def close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()
