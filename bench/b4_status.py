"""B4: `launch status SWEEP_DIR` on a 100-job sweep: time, and scheduler calls.

A 100-job sweep is submitted held (queued, never run; see B3), then
`launch status SWEEP_DIR` is run several times with the scheduler wrappers
(`bench/shims.py`) first on PATH, which count the squeue and sacct calls of
each invocation. The contract: one table, at most one squeue and one sacct
call per refresh, no torch. The baseline is those two queries alone, as a
shell runs them, which is the least a status command can cost.
"""

from __future__ import annotations

import time
from pathlib import Path

from b3_sweep import launch_command, sweep_size
from common import LAUNCH, Context, Figure, Section, bench_env, run, slurm_section
from shims import SchedulerShims

TARGET_S = 0.3  # the start-up target of B2 applies to status as well
QUERIES = ("squeue -h -r -o '%i|%T|%M' >/dev/null; "
           "sacct -n -P -X --duplicates --format=JobID,State,Elapsed -j {job} >/dev/null")


def status_once(shims: SchedulerShims, sweep_dir: Path) -> dict[str, float]:
    shims.reset()
    start = time.perf_counter()
    run([LAUNCH, "status", str(sweep_dir)], env=shims.env(bench_env()), timeout=120)
    elapsed = time.perf_counter() - start
    return {"s": elapsed, "squeue": float(len(shims.calls("squeue"))),
            "sacct": float(len(shims.calls("sacct"))),
            "other": float(len([c for c in shims.calls() if c.name not in ("squeue", "sacct")]))}


def queries_once(job_id: str) -> float:
    start = time.perf_counter()
    run(["bash", "-c", QUERIES.format(job=job_id)], timeout=60)
    return time.perf_counter() - start


def run_section(ctx: Context) -> Section:
    jobs = sweep_size(ctx)
    section = slurm_section(ctx, "B4", f"`launch status` on a {jobs}-job sweep")
    if section.unavailable:
        return section
    work = ctx.folder("b4")
    shims = SchedulerShims(work / "shims")
    reps = 2 if ctx.quick else 7
    try:
        ctx.log(f"B4 submitting a held {jobs}-job sweep")
        run(launch_command(work / "exp", jobs), env=shims.env(bench_env()), timeout=300)
        (sweep_dir,) = [p.parent for p in (work / "exp" / "sweeps").glob("*/jobs.json")]
        job_id = shims.submitted_ids()[-1]
        probe = run([LAUNCH, "status", str(sweep_dir)], check=False)
        if probe.returncode != 0:
            last = (probe.stderr.strip() or probe.stdout.strip() or "no output").splitlines()
            section.unavailable = (f"`launch status SWEEP_DIR` exited {probe.returncode}: "
                                   f"{last[-1]}")
            return section
        ctx.log(f"B4 launch status x {reps}")
        samples = [status_once(shims, sweep_dir) for _ in range(reps)]
        floor = section.add(Figure("one squeue + one sacct call (shell)",
                                   [queries_once(job_id) for _ in range(reps)], "s"))
    finally:
        shims.cancel_all()
    status = section.add(Figure(f"launch status SWEEP_DIR ({jobs} jobs)",
                                [s["s"] for s in samples], "s", baseline=floor,
                                target=f"< {TARGET_S} s"))
    status.holds = status.value is not None and status.value < TARGET_S
    squeue = section.add(Figure("squeue calls per status", [s["squeue"] for s in samples],
                                "calls", target="<= 1"))
    squeue.holds = max(squeue.samples) <= 1
    sacct = section.add(Figure("sacct calls per status", [s["sacct"] for s in samples],
                               "calls", target="<= 1"))
    sacct.holds = max(sacct.samples) <= 1
    section.add(Figure("other scheduler calls per status", [s["other"] for s in samples],
                       "calls"))
    section.profile_argv = [LAUNCH, "status", str(sweep_dir)]
    calls = max(*squeue.samples, *sacct.samples)
    section.worst = calls if calls > 1 else (status.value or 0) / TARGET_S
    section.notes.append(
        "Counted with wrappers for squeue, sacct, sbatch, scontrol and sinfo placed first on "
        "PATH; the jobs were held in the queue during the measurement and cancelled after.")
    return section
