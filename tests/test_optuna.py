"""Hydra's Optuna sweeper (hydra-optuna-sweeper: trials in batches of n_jobs, each a job
of its own) over the learning rate of the tones recipe, on the launcher's executors.

hydra-optuna-sweeper needs optuna 2.x, which cannot share .venv with the launcher's own
search (optuna >= 4): `launch` runs in the side environment made for it
(tests/hydra_optuna_env.py, the `hydra_optuna_python` fixture)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_four_trial_study_reports_the_best_trial(hydra_optuna_python, tmp_path):
    done = subprocess.run(
        [str(hydra_optuna_python), "-m", "launcher.cli", str(ROOT / "egs3" / "tones" / "asr1"),
         f"exp_root={tmp_path}", "-m", "stages=[collect_stats,train]", "trainer.max_epochs=1",
         "dataset.train.num_utts=160", "dataset.valid.num_utts=32", "hydra/sweeper=optuna",
         "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
         "hydra.sweeper.direction=minimize", "hydra.sweeper.sampler.seed=0",
         "optim.lr=tag(log,interval(0.0003,0.03))"],
        cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=600)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    match = re.search(r"best trial: optim.lr=([\d.e-]+) -> ([\d.]+)", out)
    assert match, out
    (registry,) = (tmp_path / "sweeps").glob("*/jobs.json")
    trials = json.loads(registry.read_text())["jobs"]
    assert len(trials) == 4 and all(t["state"] == "COMPLETED" for t in trials)
    values = {t["value"] for t in trials}
    assert float(match.group(2)) == pytest.approx(min(values))  # each run's best valid/loss
    assert len({t["run_dir"] for t in trials}) == 4
