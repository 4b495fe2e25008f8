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
    slurm_section,
)
from shims import SchedulerShims

TARGET_S = 5.0


def sweep_size(ctx: Context) -> int:
    return 5 if ctx.quick else 100


def lr_values(jobs: int) -> str:
    return ",".join(f"{(i + 1) * 1e-4:.4f}" for i in range(jobs))


def launch_command(exp_root: Path, jobs: int, *extra: str) -> list[str]:
    return [LAUNCH, str(RECIPE), "hydra/launcher=slurm", f"exp_root={exp_root}",
            "+cluster.sbatch.hold=true", *extra, "-m", f"optim.lr={lr_values(jobs)}"]


def hydra_command(sweep_dir: Path, jobs: int) -> list[str]:
    return [PYTHON, str(BASELINES / "hydra_app.py"), "-m", "hydra/launcher=submitit_slurm",
            "hydra.launcher.partition=debug", "+hydra.launcher.additional_parameters.hold=true",
            f"hydra.sweep.dir={sweep_dir}", f"optim.lr={lr_values(jobs)}"]


def queued_tasks(array_id: str) -> int:
    """Array tasks of this job the scheduler lists (pending, held)."""
    out = subprocess.run(["squeue", "-h", "-r", "-j", array_id, "-o", "%i"],
                         capture_output=True, text=True).stdout
    return len(out.split())


def submit_launch(shims: SchedulerShims, argv: list[str], jobs: int, state: Path
                  ) -> dict[str, float]:
    """Run `launch -m` (it returns once the jobs are queued); time it and its sbatch.

    `state` is the launcher's state folder: a new one is a first launch, whose
    checks import the recipe's classes; one a launch has used remembers them."""
    shims.reset()
    start = time.time()
    run(argv, env=shims.env(bench_env({"LAUNCHER_STATE_DIR": str(state)})), timeout=300)
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


def import_floor() -> float:
    start = time.perf_counter()
    run([PYTHON, "-c", "import pytorch_lightning"], env=bench_env(), timeout=120)
    return time.perf_counter() - start


def compose_costs(ctx: Context) -> dict[str, float]:
    jobs = 30
    out = run([PYTHON, str(BENCH / "compose_probe.py"), str(RECIPE), str(jobs)],
              timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_section(ctx: Context) -> Section:
    jobs = sweep_size(ctx)
    section = slurm_section(ctx, "B3", f"Submitting a {jobs}-run sweep to SLURM (lower is better)")
    if section.unavailable:
        return section
    work = ctx.folder("b3")
    shims = SchedulerShims(work / "shims")
    first_runs, again_runs, hydra_runs, floors, bare_runs = [], [], [], [], []
    try:
        for rep in range(ctx.reps):
            ctx.log(f"B3 {jobs}-job sweep, repetition {rep + 1}/{ctx.reps}")
            hydra_runs.append(submit_hydra(shims, work / f"hydra.{rep}", jobs))
            state = work / f"state.{rep}"
            first_runs.append(submit_launch(
                shims, launch_command(work / f"first.{rep}", jobs), jobs, state))
            again_runs.append(submit_launch(
                shims, launch_command(work / f"again.{rep}", jobs), jobs, state))
            bare_runs.append(submit_launch(
                shims, launch_command(work / f"bare.{rep}", jobs, "snapshot=false"), jobs,
                state))
            floors.append(import_floor())
    finally:
        shims.cancel_all()
    hydra = section.add(Figure(f"{jobs} jobs queued: Hydra + submitit_slurm",
                               [r["queued"] for r in hydra_runs], "s"))
    target = f"< {TARGET_S:.0f} s, one sbatch call"
    first = section.add(Figure(f"{jobs} jobs queued: launch -m, first launch of the recipe",
                               [r["queued"] for r in first_runs], "s", baseline=hydra,
                               target=target))
    again = section.add(Figure(f"{jobs} jobs queued: launch -m, again (checks remembered)",
                               [r["queued"] for r in again_runs], "s", baseline=hydra,
                               target=target))
    add_snapshot_figures(section, again_runs, bare_runs, work / "first.0")
    section.add(Figure("floor of a first launch: python -c 'import pytorch_lightning'",
                       floors, "s"))
    section.add(Figure("first launch less that floor", [r["queued"] - f for r, f in
                                                        zip(first_runs, floors, strict=True)],
                       "s"))
    calls = [section.add(Figure(f"sbatch calls: launch -m, {name}",
                                [r["sbatch_calls"] for r in runs], "calls"))
             for name, runs in (("first launch", first_runs), ("again", again_runs))]
    section.add(Figure("sbatch calls: Hydra + submitit_slurm",
                       [r["sbatch_calls"] for r in hydra_runs], "calls"))
    for figure, count in ((first, calls[0]), (again, calls[1])):
        figure.holds = (figure.value is not None and figure.value < TARGET_S
                        and count.value == 1)
    section.worst = first.value / TARGET_S if first.value else None
    # 30 jobs show the per-job costs as well as 100, in a third of the time.
    section.profile_argv = launch_command(work / "profile", min(jobs, 30))
    section.profile_env = {"LAUNCHER_STATE_DIR": str(work / "state.profile")}
    section.add(Figure("launch -m returned, first launch",
                       [r["returned"] for r in first_runs], "s"))
    section.add(Figure("the sbatch call itself: launch -m",
                       [r["sbatch_s"] for r in first_runs + again_runs], "s"))

    if ctx.quick:
        section.notes.append("--quick: no per-job composition cost.")
    else:
        add_compose_figures(ctx, section)
    section.notes.append(
        "Queued: from starting the command to the end of its sbatch call (the sbatch "
        "wrapper's clock); every job of the array was then listed by squeue (held) and "
        "cancelled. The Hydra app is stopped once sbatch answered, since "
        "hydra-submitit-launcher otherwise blocks until the jobs end.")
    section.notes.append(
        "First launch: a new launcher state folder, so the checks import the recipe's "
        "classes, and with them torch and Lightning, before anything is queued. Again: the "
        "same sweep once more with that folder, where the checks of this recipe's job shape "
        "are remembered (launcher/check_cache.py) and nothing imports torch. The floor is "
        "the Lightning import alone, measured in the same run: no check of the classes can "
        "be faster, and the Hydra app does none.")
    return section


def add_snapshot_figures(section: Section, again_runs: list, bare_runs: list,
                         exp_root: Path) -> None:
    """What the code snapshot adds to a launch: the same launch without it, in the same
    run, and the size of the copy (one per launch, shared by all its jobs)."""
    bare = section.add(Figure("jobs queued: launch -m, again, snapshot=false",
                              [r["queued"] for r in bare_runs], "s"))
    section.add(Figure("jobs queued: launch -m, again, with the code snapshot (default)",
                       [r["queued"] for r in again_runs], "s", baseline=bare))
    abouts = [json.loads(p.read_text()) for p in exp_root.glob("sweeps/*/code/snapshot.json")]
    section.add(Figure("code snapshot of the sweep: bytes", [a["bytes"] for a in abouts],
                       "bytes"))
    section.add(Figure("code snapshot of the sweep: files", [a["files"] for a in abouts],
                       "files"))


def add_compose_figures(ctx: Context, section: Section) -> None:
    ctx.log("B3 per-job composition cost")
    costs = [compose_costs(ctx) for _ in range(2)]
    floor = section.add(Figure("per job: Hydra compose (one initialisation)",
                               [c["hydra_compose"] for c in costs], "ms"))
    section.add(Figure("per job: launcher compose (launcher.plan.recipe.compose)",
                       [c["compose"] for c in costs], "ms", baseline=floor))
    section.add(Figure("per job: launcher compose + checks (launcher.plan.planning.plan)",
                       [c["plan"] for c in costs], "ms", baseline=floor))
    section.add(Figure("per job: launcher compose_sweep (first job composed, values applied)",
                       [c["compose_sweep"] for c in costs], "ms", baseline=floor))
