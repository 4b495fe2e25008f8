"""Every file and folder name of a run directory and of a sweep folder, in one place.

    <exp_root>/<run name>/          one run (its name: `launcher.identity`)
        config.yaml                 the resolved config of the run
        run.log, run.rank<N>.log    the log of rank 0, of the others
        status.json                 state, who runs it, how it ended
        progress.json               epoch, step, loss, speed (for `launch status`)
        metrics.csv                 every logged metric, kept across resumes
        record.json, git.diff       what produced the run, attempt by attempt (`launch show`)
        trackers.json               the ids of its TensorBoard/MLflow/W&B runs, reused on resume
        checkpoints/                last.ckpt, the best per criterion, periodic-*
        <metric>.ave_<k>best.pth    the average of a criterion's best (valid.loss.ave_3best.pth)
        stats/                      collect_stats (unless the config sets stats_dir):
                                    {train,valid}/<name>_stats.npz, <name>_shape, stats_keys
        evaluate.json               test metrics and the weights that gave them
        phases/<name>/              a curriculum phase: its own checkpoints, metrics, ...
        .lock                       held by the process that trains the run
    <exp_root>/sweeps/<id>/         one launch through an executor
        jobs.json                   what was submitted (`launcher.executors.registry`)
        launch.json, git.diff       the launch's facts for its runs' records
        code/                       the code the jobs import (`launcher.snapshot`)
        .submitit/                  the scheduler's logs and submitit's files
        report.csv, *.png           `launch report`

Nothing here imports anything: every layer may use these names.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

DEFAULT_EXP_ROOT = "exp"
CONFIG_FILE = "config.yaml"
LOG_FILE = "run.log"
STATUS_FILE = "status.json"
PROGRESS_FILE = "progress.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
PERIODIC_PREFIX = "periodic-"
AVERAGED_GLOB = "*.ave_*best.pth"
STATS_DIR = "stats"
EVALUATE_FILE = "evaluate.json"
PHASES_DIR = "phases"
PHASE_FILE = "phase.json"
FINAL_WEIGHTS = "final.pth"
LOCK_FILE = ".lock"
TENSORBOARD_DIR = "tensorboard"
TRACKERS_FILE = "trackers.json"
RECORD_FILE = "record.json"
GIT_DIFF_FILE = "git.diff"

SWEEPS_DIR = "sweeps"
REGISTRY = "jobs.json"
SUBMITIT_DIR = ".submitit"
REPORT_FILE = "report.csv"
CURVES_FILE = "curves.png"
SWEEP_INDEX = "sweeps.txt"  # in the user's state folder: every sweep, in launch order


def log_file(rank: int) -> str:
    """run.log for rank 0; run.rank<N>.log for the others, so logs never interleave."""
    return LOG_FILE if rank == 0 else f"run.rank{rank}.log"


def run_log(run_dir: str | Path) -> Path:
    """A run's log: run.log; in the folder of a plain Hydra app's job, Hydra's own
    `<job name>.log` (the only log file there)."""
    path = Path(run_dir) / LOG_FILE
    if path.is_file():
        return path
    others = sorted(Path(run_dir).glob("*.log")) if Path(run_dir).is_dir() else []
    return others[0] if len(others) == 1 else path


def averaged_file(monitor: str, count: int) -> str:
    """ESPnet's name: `valid/loss` averaged over 3 checkpoints is valid.loss.ave_3best.pth."""
    return f"{monitor.replace('/', '.')}.ave_{count}best.pth"


def averaged_glob(monitor: str) -> str:
    return f"{monitor.replace('/', '.')}.ave_*best.pth"


def checkpoints(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def exp_root(recipe_dir: str | Path, configured: Any) -> Path:
    """`exp_root`, the recipe's `exp/` by default; a relative one is taken from the
    recipe folder, so the same command finds the same folders from anywhere."""
    root = Path(str(configured)) if configured else Path(DEFAULT_EXP_ROOT)
    return root if root.is_absolute() else Path(recipe_dir).resolve() / root


def stats_dir(configured: Any, recipe_dir: str | Path | None, run_dir: str | Path) -> Path:
    """Where collect_stats writes: the config's `stats_dir` (a relative one taken from
    the recipe folder), else `<run_dir>/stats`. Read by the stage, and by planning
    to tell whether statistics a run reads exist yet."""
    if not configured:
        return Path(run_dir) / STATS_DIR
    path = Path(str(configured))
    return path if path.is_absolute() or not recipe_dir else Path(recipe_dir) / path


def new_sweep_dir(recipe_dir: str | Path, configured_root: Any) -> Path:
    """A fresh folder for one launch's bookkeeping (jobs.json, scheduler logs)."""
    base = exp_root(recipe_dir, configured_root) / SWEEPS_DIR
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = base / stamp, 1
    while candidate.exists():
        candidate, n = base / f"{stamp}-{n}", n + 1
    return candidate
