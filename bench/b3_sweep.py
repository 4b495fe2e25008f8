"""B3: submitting a 100-run sweep to the local SLURM cluster.

`launch bench/recipe hydra/launcher=slurm -m optim.lr=<100 values>` against a
plain Hydra app (`bench/baselines/hydra_app.py`) sweeping the same config
with `hydra/launcher=submitit_slurm`. The figure is the time from starting
the command until sbatch has answered for all jobs (one job array each),
taken from the sbatch wrapper on PATH (`bench/shims.py`), which also counts
the calls. Jobs are submitted held (`--hold`): queued, counted, never run,
then cancelled, so the figure is time-to-queued and nothing else.

Also the per-job config composition cost (`bench/compose_probe.py`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from common import (
    BASELINES,
    BENCH,
    LAUNCH,
    PYTHON,
    RECIPE,
    BenchError,
    Context,
    Figure,
    Section,
    bench_env,
    run,
)
from shims import SchedulerShims

TARGET_S = 5.0


def sweep_size(ctx: Context) -> int:
    return 5 if ctx.quick else 100


def lr_values(jobs: int) -> str:
    return ",".join(f"{(i + 1) * 1e-4:.4f}" for i in range(jobs))


def launch_command(exp_root: Path, jobs: int) -> list[str]:
    return [LAUNCH, str(RECIPE), "hydra/launcher=slurm", f"exp_root={exp_root}",
            "+cluster.sbatch.hold=true", "-m", f"optim.lr={lr_values(jobs)}"]


def hydra_command(sweep_dir: Path, jobs: int) -> list[str]:
    return [PYTHON, str(BASELINES / "hydra_app.py"), "-m", "hydra/launcher=submitit_slurm",
            "hydra.launcher.partition=debug", "+hydra.launcher.additional_parameters.hold=true",
            f"hydra.sweep.dir={sweep_dir}", f"optim.lr={lr_values(jobs)}"]


def queued_tasks(array_id: str) -> int:
    """Array tasks of this job the scheduler lists (pending, held)."""
    out = subprocess.run(["squeue", "-h", "-r", "-j", array_id, "-o", "%i"],
                         capture_output=True, text=True).stdout
    return len(out.split())


def proposed_command(exp_root: Path, jobs: int) -> list[str]:
    """`launch -m` with the fixes proposed for launcher/ patched in (bench/proposed_fixes.py)."""
    return [PYTHON, str(BENCH / "proposed_fixes.py"), *launch_command(exp_root, jobs)[1:]]


def submit_launch(shims: SchedulerShims, argv: list[str], jobs: int) -> dict[str, float]:
    """Run `launch -m` (it returns once the jobs are queued); time it and its sbatch."""
    shims.reset()
    start = time.time()
    run(argv, env=shims.env(bench_env()), timeout=300)
    returned = time.time() - start
    return result_of(shims, start, jobs, returned=returned)


def submit_hydra(shims: SchedulerShims, sweep_dir: Path, jobs: int) -> dict[str, float]:
    """Start the Hydra app, wait for its sbatch to answer, then stop the app (it would
    block until the jobs end)."""
    shims.reset()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir.parent / f"{sweep_dir.name}.log", "w") as log:
        start = time.time()
        app = subprocess.Popen(hydra_command(sweep_dir, jobs), env=shims.env(bench_env()),
                               stdout=log, stderr=subprocess.STDOUT, cwd=BENCH.parent)
        try:
            while not shims.calls("sbatch"):
                if app.poll() is not None:
                    raise BenchError(f"the Hydra app exited {app.returncode} before sbatch; "
                                     f"see {log.name}")
                if time.time() - start > 300:
                    raise BenchError("the Hydra app did not submit within 300 s")
                time.sleep(0.01)
        finally:
            app.send_signal(signal.SIGINT)
            try:
                app.wait(10)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()
    return result_of(shims, start, jobs)


def result_of(shims: SchedulerShims, start: float, jobs: int, returned: float | None = None
              ) -> dict[str, float]:
    sbatch = shims.calls("sbatch")
    if not sbatch or sbatch[-1].rc != 0:
        raise BenchError("sbatch was not called, or failed")
    array_id = shims.submitted_ids()[-1]
    listed = queued_tasks(array_id)
    subprocess.run(["scancel", array_id], capture_output=True)
    if listed != jobs:
        raise BenchError(f"{listed} of {jobs} jobs of array {array_id} were queued")
    return {"queued": sbatch[-1].end - start, "sbatch_calls": float(len(sbatch)),
            "sbatch_s": sbatch[-1].end - sbatch[-1].start,
            "returned": returned if returned is not None else float("nan")}


def compose_costs(ctx: Context) -> dict[str, float]:
    jobs = 30
    out = run([PYTHON, str(BENCH / "compose_probe.py"), str(RECIPE), str(jobs)],
              timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_section(ctx: Context) -> Section:
    jobs = sweep_size(ctx)
    section = Section("B3", f"Submitting a {jobs}-run sweep to SLURM (lower is better)")
    if not ctx.slurm:
        section.unavailable = "the local SLURM cluster is not up (make slurm-up)"
        return section
    work = ctx.folder("b3")
    shims = SchedulerShims(work / "shims")
    launch_runs, hydra_runs, proposed_runs = [], [], []
    try:
        for rep in range(ctx.reps):
            ctx.log(f"B3 {jobs}-job sweep, repetition {rep + 1}/{ctx.reps}")
            hydra_runs.append(submit_hydra(shims, work / f"hydra.{rep}", jobs))
            launch_runs.append(submit_launch(shims, launch_command(work / f"exp.{rep}", jobs),
                                             jobs))
            if not ctx.quick:
                proposed_runs.append(submit_launch(
                    shims, proposed_command(work / f"proposed.{rep}", jobs), jobs))
    finally:
        shims.cancel_all()
    hydra = section.add(Figure(f"{jobs} jobs queued: Hydra + submitit_slurm",
                               [r["queued"] for r in hydra_runs], "s"))
    queued = section.add(Figure(f"{jobs} jobs queued: launch -m", [r["queued"] for r in
                                                                  launch_runs], "s",
                                baseline=hydra, target=f"< {TARGET_S:.0f} s, one sbatch call"))
    calls = section.add(Figure("sbatch calls: launch -m",
                               [r["sbatch_calls"] for r in launch_runs], "calls"))
    section.add(Figure("sbatch calls: Hydra + submitit_slurm",
                       [r["sbatch_calls"] for r in hydra_runs], "calls"))
    queued.holds = (queued.value is not None and queued.value < TARGET_S
                    and calls.value == 1)
    section.worst = queued.value / TARGET_S if queued.value else None
    # 30 jobs show the per-job costs as well as 100, in a third of the time.
    section.profile_argv = launch_command(work / "profile", min(jobs, 30))
    if proposed_runs:
        section.add(Figure(f"{jobs} jobs queued: launch -m with the proposed fixes (what-if)",
                           [r["queued"] for r in proposed_runs], "s", baseline=queued))
    section.add(Figure("launch -m returned", [r["returned"] for r in launch_runs], "s"))
    section.add(Figure("the sbatch call itself: launch -m",
                       [r["sbatch_s"] for r in launch_runs], "s"))

    if ctx.quick:
        section.notes.append("--quick: no what-if run and no per-job composition cost.")
    else:
        add_compose_figures(ctx, section)
    section.notes.append(
        "Queued: from starting the command to the end of its sbatch call (the sbatch "
        "wrapper's clock); every job of the array was then listed by squeue (held) and "
        "cancelled. The Hydra app is stopped once sbatch answered, since "
        "hydra-submitit-launcher otherwise blocks until the jobs end.")
    section.notes.append(
        "What-if: bench/proposed_fixes.py runs the same `launch -m` with three changes "
        "patched in memory (launcher/ itself is unchanged): compose a value-only sweep once "
        "and apply each job's values to a copy; skip Hydra's BasicSweeper re-composing every "
        "job (validate_batch_is_legal) after plan() composed and checked it; take Hydra's "
        "Singleton state once per sweep instead of once per job.")
    return section


def add_compose_figures(ctx: Context, section: Section) -> None:
    ctx.log("B3 per-job composition cost")
    costs = [compose_costs(ctx) for _ in range(2)]
    floor = section.add(Figure("per job: Hydra compose (one initialisation)",
                               [c["hydra_compose"] for c in costs], "ms"))
    section.add(Figure("per job: launcher compose (launcher.recipe.compose)",
                       [c["compose"] for c in costs], "ms", baseline=floor))
    section.add(Figure("per job: launcher compose + checks (launcher.launch.plan)",
                       [c["plan"] for c in costs], "ms", baseline=floor))
    section.add(Figure("per job: compose once, apply each job's values (proposed)",
                       [c["values_only"] for c in costs], "ms", baseline=floor))
