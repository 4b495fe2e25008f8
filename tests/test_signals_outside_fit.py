"""Signals are owned for the whole job: a stop during collect_stats or evaluate is prompt,
says `stopped` and leaves nothing half-written; `launch()` from Python raises, never exits,
and what runs next in the same process is not stopped by it."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from conftest import edit_config
from test_interrupts import finish, start, status

from launcher.launch import launch
from launcher.signals import JobEnds
from launcher.systems.base.system import System, stage

SLOW = '''
import time

import torch

from .model import Regressor


class SlowStats(Regressor):
    def collect_feats(self, x, y):
        time.sleep(0.4)
        return {"feats": x[:, None, :], "feats_lengths": torch.ones(len(x), dtype=torch.long)}


class SlowTest(Regressor):
    def forward(self, x, y):
        if not self.training:
            time.sleep(0.3)
        return super().forward(x, y)
'''


def wait_for_line(log: Path, text: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.is_file() and text in log.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"'{text}' never appeared in {log}")


def stopped_promptly(process, run_dir: Path) -> None:
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code, _, err = finish(process)
    assert code == 143 and "Traceback" not in err, err
    assert time.monotonic() - sent < 15, "the stage ran on after the signal"
    assert status(run_dir)["state"] == "stopped"
    assert list(run_dir.rglob(".*.tmp")) == []


def test_sigterm_during_collect_stats_stops_it_promptly(toy_recipe, tmp_path):
    (toy_recipe / "src" / "slow.py").write_text(SLOW)
    edit_config(toy_recipe, lambda c: c.update(
        model={"_target_": "src.slow.SlowStats", "hidden": 8},
        dataset={**c["dataset"], "train": {"_target_": "src.model.ToyData", "size": 640}}))
    exp = tmp_path / "exp"
    process = start(toy_recipe, exp, "stages=[collect_stats]")
    (run_dir,) = _run_dirs_when_there(exp)
    wait_for_line(run_dir / "run.log", "stage collect_stats: start")
    time.sleep(1.0)
    stopped_promptly(process, run_dir)
    assert not (run_dir / "stats").exists() or not any((run_dir / "stats").iterdir())


def test_sigterm_during_evaluate_stops_it_promptly(toy_recipe, tmp_path, launch_cli):
    (toy_recipe / "src" / "slow.py").write_text(SLOW)
    edit_config(toy_recipe, lambda c: c.update(
        model={"_target_": "src.slow.SlowTest", "hidden": 8},
        dataset={**c["dataset"], "test": {"_target_": "src.model.ToyData", "size": 640}}))
    exp = tmp_path / "exp"
    assert launch_cli(toy_recipe, f"exp_root={exp}", "trainer.max_epochs=1")[0] == 0
    process = start(toy_recipe, exp, "trainer.max_epochs=1", "stages=[evaluate]")
    (run_dir,) = _run_dirs_when_there(exp)
    wait_for_line(run_dir / "run.log", "stage evaluate: start")
    time.sleep(1.0)
    stopped_promptly(process, run_dir)
    assert not (run_dir / "evaluate.json").exists()


def test_launch_from_python_raises_a_launcher_exception_not_system_exit(toy_recipe, tmp_path):
    edit_config(toy_recipe, lambda c: c.update(
        lightning_module={"_target_": "src.probe.InterruptingProbe"}))
    with pytest.raises(JobEnds) as ended:
        launch(toy_recipe, [f"exp_root={tmp_path / 'exp'}", "+interrupt_at=[2]"])
    assert not isinstance(ended.value, SystemExit) and ended.value.exit_code == 143
    (run_dir,) = _run_dirs_when_there(tmp_path / "exp")
    assert json.loads((run_dir / "status.json").read_text())["state"] == "stopped"
    # the signal ended that job only: a System run next in this process is not stopped
    ran = []

    class Once(System):
        @stage
        def train(self):
            ran.append("train")

    Once({"run_dir": str(tmp_path)}).run(["train"])
    assert ran == ["train"]


def _run_dirs_when_there(exp: Path, timeout_s: float = 120) -> list[Path]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [p for p in exp.glob("*") if p.is_dir() and p.name != "sweeps"]
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no run folder in {exp}")
