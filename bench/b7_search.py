"""B7: the launcher's asynchronous search against Hydra's batched Optuna sweeper, on SLURM.

The same search three ways, one after the other on the local SLURM cluster, with the
same space, number of trials and trials at a time:

(a) Hydra's Optuna sweeper (hydra-optuna-sweeper): `launch RECIPE -m hydra/sweeper=optuna
    hydra.sweeper.n_trials=N hydra.sweeper.n_jobs=S`. Each trial is a job of its own,
    submitted in batches of S; a batch waits for its slowest trial. The sweeper needs
    optuna 2.x, so `launch` runs in the side environment made for it
    (tests/hydra_optuna_env.py); everything but optuna comes from .venv.
(b) the launcher's search: `launch RECIPE search.n_trials=N search.slots=S --wait`: S jobs
    (slots) that each pull the next trial from the study the moment theirs ends.
(c) the same with the median pruner.

Trials are deliberately uneven: a copy of the tones recipe sleeps `epoch_sleep` seconds
at the end of every training epoch (src/sleepy.py, written here), and the search varies
epoch_sleep (log-uniform, 0.3 to 6 s) as well as the learning rate. The figure is the
wall time of each command, start to exit: all three return once the last trial has
ended. Values come from the study (b, c) and from the sweep's
`optimization_results.yaml` and jobs.json (a).
"""

from __future__ import annotations

import datetime
import json
import math
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    LAUNCH,
    PYTHON,
    ROOT,
    BenchError,
    Context,
    Figure,
    Section,
    bench_env,
    run,
    slurm_section,
)
from shims import SchedulerShims

TONES = ROOT / "egs3" / "tones" / "asr1"
SLOTS = 4  # trials at a time: the cluster's 4 CPUs (2 nodes x 2), one per trial
EPOCHS = 4
SPACE = ("optim.lr=tag(log,interval(0.0003,0.05))", "epoch_sleep=tag(log,interval(0.3,6))")
PRUNER = "{name:median,n_startup_trials:4,n_warmup_steps:1}"
TARGET_ASYNC, TARGET_PRUNED = 0.7, 0.5
SLEEPY = '''"""Trials of deliberately uneven length: sleep at the end of every training epoch."""

import time

from pytorch_lightning.callbacks import Callback

from .model import TonesCTC


class SleepPerEpoch(Callback):
    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        time.sleep(self.seconds)


class SleepyTonesCTC(TonesCTC):
    """The recipe's model, declaring the top-level key `epoch_sleep` as read: its only
    use, `${epoch_sleep}` in trainer.callbacks, is resolved before the launcher's check
    of top-level keys looks for interpolations (launcher/job/config.py)."""

    config_keys = ("epoch_sleep",)
'''
STUDY_READER = """
import json, sys
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
optuna.logging.set_verbosity(optuna.logging.WARNING)
spec = json.load(open(sys.argv[1]))
storage = JournalStorage(JournalFileBackend(spec["dir"] + "/journal.log"))
study = optuna.load_study(study_name=spec["study"], storage=storage)
stamp = lambda t: t.timestamp() if t else None
print(json.dumps([{"number": t.number, "state": t.state.name, "value": t.value,
                   "start": stamp(t.datetime_start), "end": stamp(t.datetime_complete),
                   "epochs": len(t.intermediate_values)}
                  for t in study.get_trials(deepcopy=False)]))
"""
LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\]")


def workload(ctx: Context) -> dict[str, Any]:
    trials = 8 if ctx.quick else 16
    return {"trials": trials, "slots": SLOTS, "epochs": EPOCHS, "train_utts": 128,
            "valid_utts": 32}


def make_recipe(folder: Path) -> Path:
    """A copy of the tones recipe whose trials sleep `epoch_sleep` s per training epoch."""
    import yaml

    recipe = folder / "recipe"
    shutil.rmtree(recipe, ignore_errors=True)
    shutil.copytree(TONES, recipe, ignore=shutil.ignore_patterns("exp", "__pycache__"))
    (recipe / "src" / "sleepy.py").write_text(SLEEPY)
    path = recipe / "conf" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["model"]["_target_"] = "src.sleepy.SleepyTonesCTC"
    config["trainer"]["callbacks"] = [{"_target_": "src.sleepy.SleepPerEpoch",
                                       "seconds": "${epoch_sleep}"}]
    config["epoch_sleep"] = 1.0
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return recipe


def common_overrides(load: dict[str, Any], exp_root: Path) -> list[str]:
    """What every trial of every variant runs with: one CPU each, so that SLOTS trials fit
    the cluster at once."""
    return [f"exp_root={exp_root}", "hydra/launcher=slurm", "stages=[collect_stats,train]",
            f"trainer.max_epochs={load['epochs']}",
            f"dataset.train.num_utts={load['train_utts']}",
            f"dataset.valid.num_utts={load['valid_utts']}", "resources.cpus_per_task=1"]


def hydra_command(side_python: Path, recipe: Path, load: dict[str, Any], exp_root: Path
                  ) -> list[str]:
    return [str(side_python), "-m", "launcher.cli", str(recipe), "-m", "hydra/sweeper=optuna",
            f"hydra.sweeper.n_trials={load['trials']}", f"hydra.sweeper.n_jobs={load['slots']}",
            "hydra.sweeper.direction=minimize", "hydra.sweeper.sampler.seed=0", *SPACE,
            *common_overrides(load, exp_root)]


def search_command(recipe: Path, load: dict[str, Any], exp_root: Path, pruner: str
                   ) -> list[str]:
    return [LAUNCH, str(recipe), f"search.n_trials={load['trials']}",
            f"search.slots={load['slots']}", "search.sampler={name:tpe,seed:0}",
            f"search.pruner={pruner}", *SPACE, *common_overrides(load, exp_root), "--wait"]


def log_times(path: Path, pattern: str = "") -> list[float]:
    """Wall-clock times of the lines of a run.log (that contain `pattern`)."""
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(errors="replace").splitlines():
        match = LOG_TIME.match(line)
        if match and pattern in line:
            found.append(datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
                         .timestamp() + int(match.group(2)) / 1e3)
    return found


def slurm_time(text: str) -> float | None:
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").timestamp()
    except ValueError:
        return None  # Unknown, None


def sacct_times(job_ids: list[str]) -> dict[str, tuple[float | None, float | None]]:
    out = subprocess.run(["sacct", "-n", "-P", "-X", "--format=JobID,Start,End", "-j",
                          ",".join(job_ids)], capture_output=True, text=True).stdout
    times = {}
    for line in out.split():
        job, start, end = line.split("|")
        times[job] = (slurm_time(start), slurm_time(end))
    return times


def others_jobs(ours: set[str]) -> list[str]:
    """Jobs in the queue that were not submitted by this benchmark."""
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout
    return [j for j in out.split() if j.split("_")[0] not in ours]


def wait_for_idle(ctx: Context, ours: set[str], limit_s: float = 300) -> int:
    """Wait (bounded) until no one else's job is queued; how many still were."""
    deadline = time.monotonic() + limit_s
    while (others := others_jobs(ours)) and time.monotonic() < deadline:
        time.sleep(2)
    if others:
        ctx.log(f"B7 measuring while {len(others)} other job(s) are queued")
    return len(others)


def overlapping_jobs(start: float, end: float, ours: set[str]) -> list[str]:
    """Other jobs that ran on the cluster between `start` and `end`."""
    fmt = "%Y-%m-%dT%H:%M:%S"
    out = subprocess.run(
        ["sacct", "-a", "-n", "-P", "-X", "--format=JobID,JobName,Start,End",
         "-S", time.strftime(fmt, time.localtime(start - 1)),
         "-E", time.strftime(fmt, time.localtime(end + 1))],
        capture_output=True, text=True).stdout
    found = []
    for line in out.split("\n"):
        parts = line.split("|")
        if len(parts) != 4 or parts[0].split("_")[0] in ours:
            continue
        began, ended = slurm_time(parts[2]), slurm_time(parts[3])
        if began is not None and began < end and (ended is None or ended > start):
            found.append(f"{parts[0]} ({parts[1]})")
    return found


def measure(ctx: Context, name: str, argv: list[str], shims: SchedulerShims, state: Path,
            timeout: float) -> dict[str, Any]:
    """Run one variant to its end; its wall time and sbatch calls."""
    ours = set(shims.submitted_ids())
    waited = wait_for_idle(ctx, ours)
    shims.reset()
    ctx.log(f"B7 {name}: {' '.join(Path(a).name if a.startswith('/') else a for a in argv)}")
    start = time.time()
    done = run(argv, env=shims.env(bench_env({"LAUNCHER_STATE_DIR": str(state)}, threads=1)),
               timeout=timeout)
    end = time.time()
    sbatch = shims.calls("sbatch")
    if not sbatch or any(c.rc for c in sbatch):
        raise BenchError(f"{name}: sbatch was not called, or failed")
    ours = set(shims.submitted_ids())
    return {"start": start, "end": end, "wall": end - start, "output": done.stdout,
            "sbatch": sbatch, "others_at_start": waited,
            "others_during": overlapping_jobs(start, end, ours)}


def hydra_trials(exp_root: Path) -> dict[str, Any]:
    """Trials of Hydra's sweeper: jobs.json (state, value per job), the scheduler's start
    and end of each job, each run.log, and optimization_results.yaml (the best value)."""
    import yaml

    (registry,) = (exp_root / "sweeps").glob("*/jobs.json")
    jobs = json.loads(registry.read_text())["jobs"]
    results = yaml.safe_load((registry.parent / "optimization_results.yaml").read_text())
    scheduler = sacct_times([j["job_id"] for j in jobs])
    trials = []
    for job in jobs:
        log = Path(job["run_dir"]) / "run.log"
        lines, done = log_times(log), log_times(log, "stage train: done")
        began, ended = scheduler.get(job["job_id"], (None, None))
        trials.append({"state": job["state"], "value": job.get("value"),
                       "batch": job["job_id"].split("_")[0], "job_start": began,
                       "job_end": ended, "train_start": first(log, "stage train: start"),
                       "end": done[-1] if done else (lines[-1] if lines else None)})
    return {"trials": trials, "best": results.get("best_value")}


def study_trials(exp_root: Path) -> dict[str, Any]:
    """Trials of the launcher's search, read from its study; each trial's and each
    slot's log, and the scheduler's start of each slot."""
    (spec_file,) = (exp_root / "sweeps").glob("*/search.json")
    spec = json.loads(spec_file.read_text())
    out = run([PYTHON, "-c", STUDY_READER, str(spec_file)], timeout=120).stdout
    trials = json.loads(out.strip().splitlines()[-1])
    for trial in trials:
        log = Path(spec["dir"]) / "trials" / f"{trial['number']:04d}" / "run.log"
        trial["log_start"] = first(log, " of study ")  # the study's start is the ask,
        trial["train_start"] = first(log, "stage train: start")  # before a slot's imports
    jobs = json.loads((spec_file.parent / "jobs.json").read_text())["jobs"]
    scheduler = sacct_times([j["job_id"] for j in jobs])
    slots = []
    for job in jobs:
        log = Path(job["run_dir"]) / "run.log"
        slots.append({"job_start": scheduler.get(job["job_id"], (None, None))[0],
                      "start": first(log, "search "), "first_trial": first(log, " of study ")})
    complete = [t["value"] for t in trials if t["state"] == "COMPLETE"]
    return {"trials": trials, "slots": slots, "best": min(complete) if complete else None}


def first(log: Path, pattern: str) -> float | None:
    found = log_times(log, pattern)
    return found[0] if found else None


def import_floor(slots: int) -> float:
    """`import pytorch_lightning` in `slots` processes at once, as the slots start: what
    each slot (and each of Hydra's trial jobs) pays before its first trial."""
    start = time.perf_counter()
    procs = [subprocess.Popen([PYTHON, "-c", "import pytorch_lightning"],
                              env=bench_env(threads=1)) for _ in range(slots)]
    for proc in procs:
        proc.wait()
    return time.perf_counter() - start


def run_section(ctx: Context) -> Section:
    load = workload(ctx)
    section = slurm_section(ctx, "B7", f"Asynchronous search vs batched Optuna: "
                            f"{load['trials']} trials, {load['slots']} at a time, on SLURM "
                            "(lower is better)")
    if section.unavailable:
        return section
    sys.path.insert(0, str(ROOT / "tests"))
    import hydra_optuna_env

    try:
        side_python = hydra_optuna_env.hydra_optuna_python()
    except hydra_optuna_env.SideEnvError as exc:
        section.unavailable = f"no side environment for hydra-optuna-sweeper: {exc}"
        return section
    work = ctx.folder("b7")
    recipe = make_recipe(work)
    shims = SchedulerShims(work / "shims")
    runs: dict[str, dict[str, Any]] = {}
    try:
        runs["a"] = measure(ctx, "(a) Hydra's Optuna sweeper, batched",
                            hydra_command(side_python, recipe, load, work / "exp_a"), shims,
                            work / "state_a", timeout=900)
        runs["a"].update(hydra_trials(work / "exp_a"))
        for key, pruner in (("b", "none"), ("c", PRUNER)):
            runs[key] = measure(ctx, f"({key}) launch search, pruner {pruner}",
                                search_command(recipe, load, work / f"exp_{key}", pruner),
                                shims, work / f"state_{key}", timeout=600)
            runs[key].update(study_trials(work / f"exp_{key}"))
        floor = import_floor(load["slots"])
    finally:
        shims.cancel_all()
    add_figures(section, load, runs, floor)
    return section


def counted(trials: list[dict[str, Any]], *states: str) -> float:
    return float(sum(t["state"] in states for t in trials))


def last_end(trials: list[dict[str, Any]]) -> float | None:
    ends = [t["end"] for t in trials if t.get("end")]
    return max(ends) if ends else None


def training(trials: list[dict[str, Any]]) -> float:
    """Seconds the trials spent in their training stage, summed: the work itself."""
    return sum(t["end"] - t["train_start"] for t in trials
               if t.get("train_start") and t.get("end"))


def median_of(values: list[float]) -> list[float]:
    return [statistics.median(values)] if values else [float("nan")]


LABELS = {"a": "(a) batched", "b": "(b) search", "c": "(c) search, pruned"}


def add_figures(section: Section, load: dict[str, Any], runs: dict[str, dict[str, Any]],
                floor: float) -> None:
    a, b, c = runs["a"], runs["b"], runs["c"]
    hydra = section.add(Figure("(a) wall time: Hydra's Optuna sweeper, batched (n_jobs="
                               f"{load['slots']})", [a["wall"]], "s"))
    asynchronous = section.add(Figure("(b) wall time: launch search, no pruner (--wait)",
                                      [b["wall"]], "s", baseline=hydra,
                                      target=f"<= {TARGET_ASYNC}x batched"))
    pruned = section.add(Figure("(c) wall time: launch search, median pruner (--wait)",
                                [c["wall"]], "s", baseline=hydra,
                                target=f"<= {TARGET_PRUNED}x batched"))
    if asynchronous.ratio is not None and pruned.ratio is not None:
        asynchronous.holds = asynchronous.ratio <= TARGET_ASYNC
        pruned.holds = pruned.ratio <= TARGET_PRUNED
        section.worst = max(asynchronous.ratio / TARGET_ASYNC, pruned.ratio / TARGET_PRUNED)
    for key, label in LABELS.items():
        end = last_end(runs[key]["trials"])
        section.add(Figure(f"{label}: start -> last trial ended (its log, the study)",
                           [end - runs[key]["start"] if end else float("nan")], "s"))
    for key, label in LABELS.items():
        trials = runs[key]["trials"]
        section.add(Figure(f"{label}: trials complete",
                           [counted(trials, "COMPLETE", "COMPLETED")], "trials"))
        if key == "c":
            section.add(Figure(f"{label}: trials pruned", [counted(trials, "PRUNED")],
                               "trials"))
        failed = counted(trials, "FAIL", "FAILED")
        if failed:
            section.add(Figure(f"{label}: trials failed", [failed], "trials"))
        best = runs[key]["best"]
        section.add(Figure(f"{label}: best valid/loss",
                           [best if best is not None else float("nan")], ""))
        section.add(Figure(f"{label}: training stage of every trial, summed",
                           [training(trials)], "s"))
        section.add(Figure(f"{label}: share of the slots' time spent training",
                           [100 * training(trials) / (load["slots"] * runs[key]["wall"])],
                           "%"))
    add_phases(section, load, runs, floor)


def add_phases(section: Section, load: dict[str, Any], runs: dict[str, dict[str, Any]],
               floor: float) -> None:
    """Where each variant's time goes."""
    a = runs["a"]
    section.add(Figure("(a) sbatch calls (one per batch)", [float(len(a["sbatch"]))], "calls"))
    section.add(Figure("(a) start -> first batch queued", [a["sbatch"][0].end - a["start"]],
                       "s"))
    section.add(Figure("(a) per trial: its job started -> its training stage began (median)",
                       median_of([t["train_start"] - t["job_start"] for t in a["trials"]
                                  if t["train_start"] and t["job_start"]]), "s"))
    idle = 0.0
    for batch in {t["batch"] for t in a["trials"]}:
        members = [t for t in a["trials"] if t["batch"] == batch and t["job_end"]]
        last = max((t["job_end"] for t in members), default=0.0)
        idle += sum(last - t["job_end"] for t in members)
    section.add(Figure("(a) slot time idle at batch ends (waiting for the slowest trial)",
                       [idle], "s"))
    for key in ("b", "c"):
        run_, label = runs[key], f"({key})"
        queued = run_["sbatch"][0].end
        slots = run_["slots"]
        section.add(Figure(f"{label} start -> slots queued (launch's checks and submission)",
                           [queued - run_["start"]], "s"))
        queued = math.floor(queued)  # compared with sacct's times, whole seconds
        section.add(Figure(f"{label} slots queued -> slot job started (scheduler, per slot)",
                           [s["job_start"] - queued for s in slots if s["job_start"]] or
                           [float("nan")], "s"))
        section.add(Figure(f"{label} slot job started -> slot logs its start (per slot)",
                           [s["start"] - s["job_start"] for s in slots
                            if s["start"] and s["job_start"]] or [float("nan")], "s"))
        section.add(Figure(f"{label} slot logs its start -> its first trial begins (per slot)",
                           [s["first_trial"] - s["start"] for s in slots
                            if s["start"] and s["first_trial"]] or [float("nan")], "s"))
        section.add(Figure(f"{label} per trial: its run.log began -> its training stage "
                           "began (median)", median_of([t["train_start"] - t["log_start"]
                                                        for t in run_["trials"]
                                                        if t["train_start"] and
                                                        t["log_start"]]), "s"))
        end = last_end(run_["trials"])
        section.add(Figure(f"{label} last trial ended -> launch --wait returned",
                           [run_["end"] - end if end else float("nan")], "s"))
    section.add(Figure(f"floor: import pytorch_lightning, {load['slots']} processes at once",
                       [floor], "s"))
    add_notes(section, load, runs)


def add_notes(section: Section, load: dict[str, Any], runs: dict[str, dict[str, Any]]) -> None:
    section.notes.append(
        f"Workload: a copy of egs3/tones/asr1 (train {load['train_utts']} utterances, valid "
        f"{load['valid_utts']}, stages collect_stats and train, {load['epochs']} epochs) "
        "whose trials sleep epoch_sleep seconds at the end of each training epoch "
        "(src/sleepy.py, a Lightning callback). Space: " + ", ".join(f"`{s}`" for s in SPACE)
        + f"; {load['trials']} trials, {load['slots']} at a time, each with one CPU "
        "(resources.cpus_per_task=1: 4 fit the cluster's 2 nodes x 2 CPUs), "
        "OMP_NUM_THREADS=1, minimise valid/loss (each trial's best epoch). The cluster's "
        "4 CPUs are the machine's 2 cores.")
    section.notes.append(
        "(a) runs `python -m launcher.cli` in the side environment .venv-hydra-optuna "
        "(optuna 2.10 and hydra-optuna-sweeper 1.3.0; torch, Lightning, Hydra and the "
        "launcher from .venv: tests/hydra_optuna_env.py), TPE with seed 0 (its default "
        "sampler). (b) and (c) run `launch ... --wait` in .venv (optuna 5), TPE with seed 0 "
        f"(each slot draws from a stream of its own). (c) prunes with `{PRUNER}`: no "
        "pruning before 4 trials have completed, nor before a trial's second validation; "
        "then a trial whose valid/loss is worse than the median of earlier trials at the "
        "same epoch stops at the end of that epoch.")
    section.notes.append(
        "One repetition of each (a search is minutes), run one after the other, each with "
        "a new launcher state folder (a first launch: the checks import the recipe's "
        "classes); before each, the benchmark waits for the cluster to have no one else's "
        "job. Wall time: from starting the command to its exit; (a) returns when the last "
        "batch has ended, (b) and (c) (--wait) when the last slot has. 'Training stage': "
        "from a trial's 'stage train: start' log line to its end (its 'stage train: done' "
        "line in (a), the study's end time in (b) and (c)), summed over trials: the work "
        "the sampled trials carried (their epoch_sleep values differ between the variants, "
        "as optuna 2.10 and 5 and the slots' streams draw differently); its share: that sum "
        "over slots x wall time. A job's start and end come from sacct, in whole seconds: "
        "the rows that use them are good to a second.")
    section.notes.append(
        "Best values: each variant's best valid/loss in this one run. They show that every "
        "search trained and found a low loss; with 16 trials, 10 of them TPE's random "
        "start-up draws, which variant found the lowest is the luck of its draws, not a "
        "property of the way trials are scheduled.")
    for key in ("a", "b", "c"):
        during = runs[key]["others_during"]
        if during or runs[key]["others_at_start"]:
            section.notes.append(
                f"({key}) shared the cluster with other jobs: {', '.join(during[:6])}"
                + (" ..." if len(during) > 6 else "") + "; its figures are the worse for it.")
