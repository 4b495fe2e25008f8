"""B5: resume cost: from a requeue to the first resumed step; checkpoint writes.

Requeue (SLURM): one run of the benchmark recipe is submitted; once it has
trained, `scancel --signal=USR2` (what SLURM sends before the time limit)
makes it checkpoint and requeue itself (launcher/preemption.py); this
repeats a few times. The step clock appends a record at each process's
first step (with its start, fit start and checkpoint-restore times), and
`status.json` says when the job requeued itself, so the latency splits into:

- signal -> requeued: reaching the step boundary, writing the checkpoint,
  `scontrol requeue`;
- requeued -> process start: the scheduler (the job ends, its credential
  expires, about 10 s on this cluster, then the batch script and srun start);
- process start -> fit start: our start-up (imports, config, model);
- fit start -> first resumed step: checkpoint restore and the first step.

The same parts of the job's first, cold start are the baseline.

Checkpoint writes: `bench/ckpt_probe.py`, the launcher's atomic writer
against Lightning's plain one, for several model sizes.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from b1_overhead import THREADS, Model
from common import (
    BENCH,
    EVENTS_ENV,
    LAUNCH,
    PYTHON,
    RECIPE,
    BenchError,
    Context,
    Figure,
    Section,
    bench_env,
    read_events,
    run,
)
from shims import SchedulerShims

MODEL = Model("large", 256, 1024, 4, 32, 0)


def wait_until(what: str, check: Any, timeout: float = 120, poll_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll_s)
    return result


def first_step_of(events: Path, restart: int) -> dict[str, Any] | None:
    found = [e for e in read_events(events)
             if e.get("event") == "first_step" and e.get("restart") == restart]
    return found[-1] if found else None


def recorded_requeue(run_dir: Path) -> bool:
    """Whether the attempt that just ended wrote 'requeued' into status.json."""
    try:
        status = json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return False
    return status.get("state") == "requeued"


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (same machine: the cluster is local)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def submit(ctx: Context, shims: SchedulerShims, work: Path, events: Path) -> tuple[str, Path]:
    """One long run on SLURM; returns its job id and run directory."""
    overrides = [f"model.dim={MODEL.dim}", f"model.hidden={MODEL.hidden}",
                 f"model.layers={MODEL.layers}", f"dataloader.batch_size={MODEL.batch_size}",
                 "dataset.train.size=20000", "trainer.max_epochs=1000", "optim.lr=0.0001",
                 "+requeue.max_requeues=10"]
    env = shims.env(bench_env({EVENTS_ENV: str(events)}, threads=THREADS))
    run([LAUNCH, str(RECIPE), "hydra/launcher=slurm", f"exp_root={work / 'exp'}", *overrides],
        env=env, timeout=300)
    (registry,) = (work / "exp" / "sweeps").glob("*/jobs.json")
    (job,) = json.loads(registry.read_text())["jobs"]
    return job["job_id"], Path(job["run_dir"])


def requeue_cycles(ctx: Context, cycles: int) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """The cold start's record, and the parts of each requeue cycle."""
    work = ctx.folder("b5")
    events = work / "events.jsonl"
    shims = SchedulerShims(work / "shims")
    parts = []
    try:
        job_id, run_dir = submit(ctx, shims, work, events)
        ctx.log(f"B5 job {job_id}: waiting for its first step")
        cold = wait_until("the first step", lambda: first_step_of(events, 0), timeout=180)
        attempt = cold
        for cycle in range(1, cycles + 1):
            time.sleep(1.0)  # a few steps into the run, as a real warning would find it
            signalled = time.time()
            subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
            # The attempt checkpoints, asks for the requeue, records it and exits; then
            # SLURM starts the job again.
            recorded_at: float | None = None
            deadline = time.monotonic() + 120
            while alive(attempt["pid"]):
                if recorded_at is None and recorded_requeue(run_dir):
                    recorded_at = time.time()
                if time.monotonic() > deadline:
                    raise BenchError(f"attempt {cycle - 1} did not end within 120 s")
                time.sleep(0.02)
            ended = time.time()
            recorded = recorded_requeue(run_dir)
            resumed = wait_until(f"the first step after requeue {cycle}",
                                 lambda c=cycle: first_step_of(events, c), timeout=180)
            attempt = resumed
            parts.append({
                "signal_to_requeued": ended - signalled,
                "recorded": float(recorded),
                "signal_to_recorded": (recorded_at or float("nan")) - signalled,
                "requeued_to_start": resumed["process_start"] - ended,
                "start_to_fit": resumed["fit_start"] - resumed["process_start"],
                "fit_to_step": resumed["first_step"] - resumed["fit_start"],
                "restore": resumed.get("restored", float("nan")) - resumed["fit_start"],
                "total": resumed["first_step"] - signalled,
                "global_step": float(resumed["global_step"])})
            ctx.log(f"B5 requeue {cycle}: first resumed step {parts[-1]['total']:.1f} s "
                    f"after the signal")
    finally:
        shims.cancel_all()
    return cold, parts


def checkpoint_costs(ctx: Context) -> list[dict[str, Any]]:
    sizes = ["1e5"] if ctx.quick else ["1e5", "1e6", "1e7", "3e7"]
    out = run([PYTHON, str(BENCH / "ckpt_probe.py"), str(ctx.folder("b5", "ckpt")), *sizes],
              timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


def add_requeue_figures(section: Section, cold: dict[str, Any],
                        parts: list[dict[str, float]]) -> None:
    def values(key: str) -> list[float]:
        return [p[key] for p in parts]

    section.add(Figure("requeue: signal -> first resumed step (total)", values("total"), "s"))
    section.add(Figure("  signal -> checkpoint written, requeue asked, 'requeued' recorded",
                       values("signal_to_recorded"), "s"))
    section.add(Figure("  signal -> that process ended", values("signal_to_requeued"), "s"))
    section.add(Figure("  process ended -> new process started (scheduler)",
                       values("requeued_to_start"), "s"))
    cold_start = section.add(Figure("cold start: process start -> fit start",
                                    [cold["fit_start"] - cold["process_start"]], "s"))
    section.add(Figure("  resumed: process start -> fit start (our start-up)",
                       values("start_to_fit"), "s", baseline=cold_start))
    cold_fit = section.add(Figure("cold start: fit start -> first step",
                                  [cold["first_step"] - cold["fit_start"]], "s"))
    section.add(Figure("  resumed: fit start -> first resumed step (restore + step)",
                       values("fit_to_step"), "s", baseline=cold_fit))
    section.add(Figure("  of which: fit start -> checkpoint loaded", values("restore"), "s"))
    recorded = int(sum(values("recorded")))
    if recorded < len(parts):
        section.notes.append(
            f"Only {recorded} of {len(parts)} attempts recorded 'requeued' in status.json, "
            "though SLURM requeued every one: `scontrol requeue` (launcher/preemption.py, "
            "requeue_this_job) runs inside the job, SLURM's SIGTERM to the job's processes "
            "can kill it before it exits, and `check=True` turns that into an error: "
            "a traceback in run.log and no 'requeued' state.")


def count(n: float) -> str:
    """1e5 -> '100k', 5e7 -> '50M'."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:g}{suffix}"
    return f"{n:g}"


def run_section(ctx: Context) -> Section:
    section = Section("B5", "Resume cost (lower is better)")
    if ctx.quick:
        section.notes.append("Requeue cycles are skipped in --quick (each takes ~20 s).")
    elif not ctx.slurm:
        section.notes.append("Requeue: not available, the local SLURM cluster is not up.")
    else:
        cold, parts = requeue_cycles(ctx, cycles=ctx.reps)
        add_requeue_figures(section, cold, parts)
    ctx.log("B5 checkpoint writes")
    for row in checkpoint_costs(ctx):
        label = f"{count(row['params'])} params, {row['mb']:.0f} MB"
        plain = section.add(Figure(f"{label}: write, Lightning TorchCheckpointIO",
                                   row["plain_s"], "s"))
        section.add(Figure(f"{label}: write, launcher AtomicCheckpointIO", row["atomic_s"],
                           "s", baseline=plain))
        load = section.add(Figure(f"{label}: resume read, Lightning's load",
                                  row["lightning_load_s"], "s"))
        section.add(Figure(f"{label}: resume read, launcher's check before it",
                           row["resume_check_s"], "s", baseline=load))
    section.notes.append(
        f"Requeue: model of {MODEL.parameters:,} parameters, batch {MODEL.batch_size}, on the "
        "local SLURM cluster; each requeue is one repetition. Times across processes are "
        "wall-clock (process start from /proc, 10 ms resolution).")
    section.notes.append(
        "Checkpoints: weights + Adam state (so the file is ~3x the weights); each figure is "
        "the median of 4 writes or reads, in turn with the others; the launcher's checkpoint "
        "also carries the packed random state (a few KB).")
    section.notes.append(
        "On resume the launcher first checks the newest checkpoint (launcher/checkpointing.py, "
        "resume_checkpoint), then Lightning loads it. The check maps the file's tensors "
        "(torch.load(..., mmap=True)) instead of reading them, so the file is read once; a "
        "truncated file still fails the check.")
    return section
