"""End to end: the real `premem apply` (real local Ray, real training) on the smoke spec with a tracking section,
its TensorBoard event files read back; a second apply (nothing to do) logs nothing again."""
import shutil

import pytest

from premem.plan.build import build_plan
from premem.spec.load import load_spec
from premem.tracking.content import tracked_runs
from premem.tracking.to_tensorboard import run_folder
from tests.e2e.test_cli_apply import premem
from tests.tracking.study import ROOT
from tests.tracking.test_tensorboard import scalars

pytestmark = pytest.mark.slow


def test_apply_logs_every_run_to_tensorboard(tmp_path, smoke_pretraining):
    smoke_pretraining(tmp_path / ".premem")
    shutil.copy(ROOT / "specs" / "smoke.yaml", tmp_path / "smoke.yaml")
    with open(tmp_path / "smoke.yaml", "a") as f:
        f.write("tracking:\n  tensorboard: {log_dir: tb}\n")
    out = premem("apply", "smoke.yaml", cwd=tmp_path)
    assert "Applied: 8 done, 0 failed" in out.stdout, out.stdout  # pretraining was done
    plan = build_plan(load_spec(tmp_path / "smoke.yaml"))
    runs = tracked_runs(plan)
    assert len(runs) == 2

    def read():
        return {name: scalars(run_folder(tmp_path / "tb", run)) for name, run in runs.items()}

    first = read()
    for name, got in first.items():
        losses = got["train/loss"]
        steps = [s for s, _ in losses]
        assert steps == sorted(set(steps)) and steps[0] == 1 and len(steps) >= 2, (name, steps)
        end = steps[-1]  # two epochs: the checkpoints' metrics at the steps the epochs ended
        # a run's two evaluations are independent jobs: either may land, and be logged, first
        assert sorted(s for s, _ in got["eval/test_acc"]) == [end // 2, end], (name, got["eval/test_acc"])
        assert all(0 <= v <= 1 for _, v in got["eval/train_acc"])
        if "premem/premem_acc" in got:  # the analysis's PreMemAcc, where p could be calibrated
            assert [s for s, _ in got["premem/premem_acc"]] == [end // 2, end]
    again = premem("apply", "smoke.yaml", cwd=tmp_path)
    assert "Nothing to do" in again.stdout, again.stdout
    assert read() == first  # nothing logged twice
