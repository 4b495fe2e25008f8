"""B8: sweeps at cluster scale: planning and queueing 10 to 10,000 jobs.

For each size, `launch bench/recipe hydra/launcher=slurm -m seed=range(0,N)` is
timed twice: with `--dry-run` (compose, check and show every job) and for real,
held (`--hold`: queued, counted with `squeue -r`, then cancelled). The local
cluster's MaxArraySize is SLURM's default, 1001, so 10,000 jobs are 10 arrays.
The 1,000-job figure is set against a plain Hydra app with `submitit_slurm`
(B3's baseline), in the same run. A first launch of the recipe is made before
the timed ones, so that every timed launch has its checks remembered (B3 shows
the first launch).

Also `launch status` of the 10,000 queued jobs: wall time and scheduler calls.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from b3_sweep import submit_hydra
from common import (
    LAUNCH,
    RECIPE,
    BenchError,
    Context,
    Figure,
    Section,
    bench_env,
    run,
    slurm_section,
)
from shims import SchedulerShims

PLANNED_TARGET_S = 10.0  # 10,000 jobs planned
QUEUED_TARGET_S = 3.0  # 1,000 jobs queued, after start-up


def sizes(ctx: Context) -> tuple[int, ...]:
    return (10, 100) if ctx.quick else (10, 100, 1000, 10000)


def command(exp_root: Path, jobs: int, *extra: str) -> list[str]:
    sweep = [f"seed=range(0,{jobs})"] if jobs > 1 else []
    return [LAUNCH, str(RECIPE), "hydra/launcher=slurm", f"exp_root={exp_root}",
            "+cluster.sbatch.hold=true", *extra, *(["-m"] if sweep else []), *sweep]


def timed_run(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    run(argv, env=env, timeout=600)
    return time.perf_counter() - start


def queued(shims: SchedulerShims, argv: list[str], jobs: int, env: dict[str, str],
           status: bool = False) -> dict[str, float]:
    """Launch held jobs; the time until `launch` returned, its sbatch calls, and (with
    `status`) `launch status` of the sweep while the jobs are queued. Every array is
    counted with squeue and cancelled."""
    before = set(shims.submitted_ids())
    shims.reset()
    start = time.perf_counter()
    run(argv, env=shims.env(env), timeout=600)
    result = {"queued": time.perf_counter() - start,
              "sbatch_calls": float(len(shims.calls("sbatch")))}
    arrays = [i for i in shims.submitted_ids() if i not in before]
    try:
        listed = subprocess.run(["squeue", "-h", "-r", "-j", ",".join(arrays), "-o", "%i"],
                                capture_output=True, text=True).stdout.split()
        if len(listed) != jobs:
            raise BenchError(f"{len(listed)} of {jobs} jobs were queued (arrays {arrays})")
        if status:
            result.update(status_of(shims, argv, env))
    finally:
        subprocess.run(["scancel", *arrays], capture_output=True)
    return result


def status_of(shims: SchedulerShims, argv: list[str], env: dict[str, str]) -> dict[str, float]:
    exp_root = Path(next(a for a in argv if a.startswith("exp_root=")).split("=", 1)[1])
    sweep = max((exp_root / "sweeps").iterdir())
    shims.reset()
    start = time.perf_counter()
    out = run([LAUNCH, "status", str(sweep)], env=shims.env(env), timeout=120).stdout
    took = time.perf_counter() - start
    return {"status": took, "status_lines": float(len(out.splitlines())),
            "squeue_calls": float(len(shims.calls("squeue"))),
            "sacct_calls": float(len(shims.calls("sacct")))}


def run_section(ctx: Context) -> Section:
    section = slurm_section(ctx, "B8", "Sweeps at cluster scale: planning and queueing "
                                       "10 to 10,000 jobs (lower is better)")
    if section.unavailable:
        return section
    work = ctx.folder("b8")
    shims = SchedulerShims(work / "shims")
    env = bench_env({"LAUNCHER_STATE_DIR": str(work / "state")})
    run(command(work / "warm", 2, "--dry-run"), env=env, timeout=600)  # checks remembered
    dry: dict[int, list[float]] = {n: [] for n in sizes(ctx)}
    held: dict[int, list[dict[str, float]]] = {n: [] for n in sizes(ctx)}
    hydra: list[float] = []
    reps = 1 if ctx.quick else min(ctx.reps, 3)
    try:
        for rep in range(reps):
            ctx.log(f"B8 repetition {rep + 1}/{reps}")
            for n in sizes(ctx):
                dry[n].append(timed_run(command(work / f"dry.{n}.{rep}", n, "--dry-run"), env))
                held[n].append(queued(shims, command(work / f"held.{n}.{rep}", n), n, env,
                                      status=n == max(sizes(ctx))))
            if 1000 in sizes(ctx):
                hydra.append(submit_hydra(shims, work / f"hydra.{rep}", 1000)["queued"])
    finally:
        shims.cancel_all()
    add_figures(section, sizes(ctx), dry, held, hydra)
    return section


def add_figures(section: Section, ns: tuple[int, ...], dry: dict[int, list[float]],
                held: dict[int, list[dict[str, float]]], hydra: list[float]) -> None:
    startup = [r["queued"] for r in held[ns[0]]]  # Python, Hydra, the recipe, one sbatch
    for n in ns:
        figure = section.add(Figure(f"{n} jobs planned (--dry-run)", dry[n], "s"))
        if n == 10000:
            figure.target = f"< {PLANNED_TARGET_S:.0f} s"
            figure.holds = figure.value is not None and figure.value < PLANNED_TARGET_S
            section.worst = figure.value / PLANNED_TARGET_S if figure.value else None
    for n in ns:
        section.add(Figure(f"{n} jobs queued, held (launch -m returned)",
                           [r["queued"] for r in held[n]], "s"))
        section.add(Figure(f"{n} jobs queued: sbatch calls",
                           [r["sbatch_calls"] for r in held[n]], "calls"))
    for n in ns[1:]:
        section.add(Figure(f"per job, planned, {ns[0]} to {n} jobs",
                           [(a - b) / (n - ns[0]) * 1000
                            for a, b in zip(dry[n], dry[ns[0]], strict=True)], "ms"))
        section.add(Figure(f"per job, queued, {ns[0]} to {n} jobs",
                           [(a["queued"] - b["queued"]) / (n - ns[0]) * 1000
                            for a, b in zip(held[n], held[ns[0]], strict=True)], "ms"))
    if 1000 in ns:
        baseline = section.add(Figure("1000 jobs queued: Hydra + submitit_slurm", hydra, "s"))
        section.add(Figure("1000 jobs queued: launch -m", [r["queued"] for r in held[1000]],
                           "s", baseline=baseline))
        after = section.add(Figure(f"1000 jobs queued, after start-up (less the {ns[0]}-job "
                                   "launch)",
                                   [r["queued"] - s for r, s in
                                    zip(held[1000], startup, strict=True)], "s",
                                   target=f"< {QUEUED_TARGET_S:.0f} s"))
        after.holds = after.value is not None and after.value < QUEUED_TARGET_S
    largest = held[ns[-1]]
    section.add(Figure(f"launch status of the {ns[-1]} queued jobs",
                       [r["status"] for r in largest], "s"))
    for name in ("squeue", "sacct"):
        section.add(Figure(f"launch status of {ns[-1]} jobs: {name} calls",
                           [r[f"{name}_calls"] for r in largest], "calls"))
    section.add(Figure(f"launch status of {ns[-1]} jobs: lines printed",
                       [r["status_lines"] for r in largest], "lines"))
    section.notes.append(
        "Each command runs in a fresh process; start-up (Python, Hydra, the recipe's "
        "config, one sbatch call) is the 10-job launch. Planned: `--dry-run`, which "
        "composes and checks "
        "every job and prints the plan. Queued: from starting `launch -m` until it returned, "
        "every job held by SLURM (counted with squeue -r, then cancelled). The local "
        "cluster's MaxArraySize is 1001, so 10,000 jobs are 10 arrays, each waiting for the "
        "one before. Per job: the difference to the 10-job figure, over the extra jobs.")
