"""B2: time to the first training step of a local single run, and CLI start-up.

`launch bench/recipe` against `python bench/baselines/lightning_script.py`
(the equivalent hand-written script), same model and data: seconds from
starting the process to the end of its first optimizer step, measured as
the wall time before `Popen` in this process and the wall time the step
clock records in the child. Then the start-up of `launch --help` and
`launch status`, which must answer without importing torch.
"""

from __future__ import annotations

import time
from pathlib import Path

from b1_overhead import THREADS, Model, lightning_command, shared_command
from common import (
    EVENTS_ENV,
    LAUNCH,
    PYTHON,
    Context,
    Figure,
    Section,
    bench_env,
    interleaved,
    last_event,
    run,
    timed,
)

TARGET_RATIO = 1.3
TARGET_CLI_S = 0.3
MODEL = Model("small", 32, 64, 2, 32, 2)
TORCH_PROBE = """\
import sys
from launcher.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("imports torch:", "torch" in sys.modules, "exit:", code)
"""


def first_step(argv: list[str], events: Path) -> dict[str, float]:
    """Seconds from process start (as this process saw it) to fit start and first step."""
    start = time.time()
    run(argv, env=bench_env({EVENTS_ENV: str(events)}, threads=THREADS), timeout=300)
    marks = last_event(events, "first_step")
    return {"first_step": marks["first_step"] - start, "fit_start": marks["fit_start"] - start}


def imports_torch(args: list[str]) -> bool:
    """Whether `launch ARGS` imports torch (run in a fresh interpreter)."""
    out = run([PYTHON, "-c", TORCH_PROBE, *args], check=False).stdout
    return "imports torch: True" in out


def status_problem(run_dir: Path) -> str:
    """Why `launch status` cannot be measured, or '' when it works."""
    done = run([LAUNCH, "status", str(run_dir)], check=False)
    if done.returncode == 0:
        return ""
    last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
    return f"`launch status {run_dir.name}` exited {done.returncode}: {last}"


def run_section(ctx: Context) -> Section:
    section = Section("B2", "Time to first training step, and CLI start-up (lower is better)")
    work = ctx.folder("b2")
    reps = max(ctx.reps, 3) if not ctx.quick else 1
    ctx.log(f"B2 time to first step x {reps}")
    samples = interleaved(reps, {
        "script": lambda rep: first_step(lightning_command(MODEL, work / f"pl.{rep}"),
                                         work / f"pl.{rep}.jsonl"),
        "launch": lambda rep: first_step(shared_command(MODEL, work / f"exp.{rep}"),
                                         work / f"launch.{rep}.jsonl"),
    })
    script = section.add(Figure("first step: python lightning_script.py",
                                [s["first_step"] for s in samples["script"]], "s"))
    shared = section.add(Figure("first step: launch bench/recipe",
                                [s["first_step"] for s in samples["launch"]], "s",
                                baseline=script, target=f"<= {TARGET_RATIO}x the script"))
    shared.holds = shared.ratio is not None and shared.ratio <= TARGET_RATIO
    section.worst = shared.ratio / TARGET_RATIO if shared.ratio else None
    section.profile_argv = shared_command(MODEL, work / "profile")
    section.profile_env = {"OMP_NUM_THREADS": str(THREADS)}
    script_fit = section.add(Figure("  of which until fit starts: script",
                                    [s["fit_start"] for s in samples["script"]], "s"))
    section.add(Figure("  of which until fit starts: launch",
                       [s["fit_start"] for s in samples["launch"]], "s", baseline=script_fit))
    if not ctx.quick:
        section.add(Figure("floor: python -c 'import torch, pytorch_lightning'",
                           [timed([PYTHON, "-c", "import torch, pytorch_lightning"])
                            for _ in range(reps)], "s"))

    cli_reps = 3 if ctx.quick else 10
    ctx.log(f"B2 CLI start-up x {cli_reps}")
    bare = section.add(Figure("python -c pass", [timed([PYTHON, "-c", "pass"])
                                                 for _ in range(cli_reps)], "s"))
    help_fig = section.add(Figure("launch --help", [timed([LAUNCH, "--help"])
                                                    for _ in range(cli_reps)], "s",
                                  baseline=bare, target=f"< {TARGET_CLI_S} s"))
    help_fig.holds = help_fig.value is not None and help_fig.value < TARGET_CLI_S
    help_fig.note = "imports torch" if imports_torch(["--help"]) else "does not import torch"

    run_dir = next((p for p in (work / "exp.0").iterdir() if p.is_dir()), None) \
        if (work / "exp.0").is_dir() else None
    problem = status_problem(run_dir) if run_dir else "no run directory to show"
    if problem:
        status = section.add(Figure("launch status RUN_DIR", [], "s",
                                    target=f"< {TARGET_CLI_S} s"))
        status.note = problem
        section.notes.append(f"`launch status` not available: {problem}")
    else:
        status = section.add(Figure("launch status RUN_DIR",
                                    [timed([LAUNCH, "status", str(run_dir)])
                                     for _ in range(cli_reps)], "s", baseline=bare,
                                    target=f"< {TARGET_CLI_S} s, no torch"))
        torch_imported = imports_torch(["status", str(run_dir)])
        status.holds = (status.value is not None and status.value < TARGET_CLI_S
                        and not torch_imported)
        status.note = "imports torch" if torch_imported else "does not import torch"
    section.notes.append(
        "First step: wall time from just before starting the process to the end of the "
        "first optimizer step, as recorded by the step clock inside it; 'until fit starts' "
        "is the part before `Trainer.fit` begins (imports, config, building the model). "
        f"launch --help: {help_fig.note}; launch status: {status.note}.")
    return section

