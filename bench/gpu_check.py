"""`make gpu-check`: the launcher on real GPUs, in one prepared script (under 5 minutes).

    python bench/gpu_check.py                 # GPUs: writes bench/GPU_RESULTS.md
    python bench/gpu_check.py --cpu           # the same flow on CPU, a rehearsal (temp file)
    python bench/gpu_check.py --only tones,b1 --keep

Checks, each a row of the results table (passed, failed or skipped with the reason,
wall time, figures):

1. tones: `launch egs3/tones/asr1` on one GPU in bf16; the test metrics of evaluate.json
   (test/ter must be below 0.3 x chance, as tests/test_tones_recipe.py asks on CPU).
2. fsdp1, fsdp2: FSDP with sharded checkpoints on all N GPUs, stopped mid-training
   (SIGTERM to `launch`, exit 143) and launched again: run.log says "resuming from",
   checkpoints/last.ckpt is a folder with meta.pt and .metadata. With N >= 2 the FSDP2
   run is stopped once more and resumed on N/2 GPUs (run.log: "the checkpoint was
   written by", resharding). Several ranks learn of the stop through `launch`'s poll of
   its jobs (seconds): there each step pauses (`StepPause`, below) so that it lands
   mid-training.
3. ddp: DDP over NCCL on N >= 2 GPUs.
4. b1: bench B1 (shared path against hand-written Lightning) on one GPU
   (`BENCH_DEVICE=gpu bench/run.py --only B1 --quick`).

`--cpu` rehearses the same flow without GPUs: 2 processes instead of N GPUs (gloo),
FSDP2 only (FSDP1 needs GPUs), 32-bit, one epoch (two for the stopped FSDP2 run), B1's
quick mode once. Without a GPU and without `--cpu`
the script exits 2 with one line and writes nothing. Every command runs with a
timeout, and the checks share a time budget; the exit status is 0 only if no check
failed.

The results (rows, table, file, machine) are in gpu_report.py; the commands and run
folders in gpu_runs.py.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gpu_report import Row, format_report, format_table, machine
from gpu_runs import (
    PAUSE_S,
    PYTHON,
    ROOT,
    Budget,
    Mode,
    batches_per_epoch,
    checkpoint_folder_problem,
    device_problem,
    exited,
    interrupt,
    launch_argv,
    log,
    output_of,
    read_json,
    run_dir_of,
    run_log,
    shown,
    tail,
    test_metrics,
    trained_on,
)

BENCH = ROOT / "bench"
DEFAULT_OUT = BENCH / "GPU_RESULTS.md"
NO_GPU = ("gpu-check: no GPU visible (torch.cuda.device_count() == 0); run it on a machine "
          "with an NVIDIA GPU")
CHECKS = ("tones", "fsdp1", "fsdp2", "ddp", "b1")
GPU_BUDGET_S = 285.0  # all checks together, on GPUs: `make gpu-check` stays under 5 minutes
CPU_BUDGET_S = 600.0  # the --cpu rehearsal on a small machine
CHANCE_TER = 0.9  # the tones recipe's token error rate by chance (tests/test_tones_recipe.py)
# Jobs import StepPause from copies of these modules alone, the ones gpu_check imports
# included (bench/ on the path would shadow modules named run, common, report).
JOB_MODULES = ("gpu_check", "gpu_report", "gpu_runs")


def __getattr__(name: str) -> Any:
    """`gpu_check.StepPause`, a Lightning callback, built when a training job first asks
    for it: the orchestrator itself never imports Lightning."""
    if name == "StepPause":
        globals()[name] = cls = _step_pause_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _step_pause_class() -> type:
    from pytorch_lightning.callbacks import Callback

    class StepPause(Callback):
        """Sleep `seconds` after every training step (no state: nothing in checkpoints)."""

        def __init__(self, seconds: float = PAUSE_S) -> None:
            self.seconds = float(seconds)

        def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(self.seconds)

    StepPause.__module__, StepPause.__qualname__ = __name__, "StepPause"
    return StepPause


# ----------------------------------------------------------------------------- checks

def check_tones(mode: Mode) -> list[Row]:
    devices = "CPU" if mode.cpu else "1 GPU"
    row = Row(f"tones recipe, {devices}, {mode.precision}")
    exp = mode.work / "tones"
    argv = launch_argv(exp, *([] if mode.cpu else mode.on(1)),
                       f"++trainer.precision={mode.precision}", *mode.short)
    row.commands.append(shown(argv))
    logfile = mode.work / "tones.log"
    code, row.wall_s = mode.run(argv, logfile, 240)
    run_dir = run_dir_of(exp)
    metrics = test_metrics(run_dir)
    row.figures.update(metrics)
    row.figures.update(trained_on(run_dir, not mode.cpu))
    row.figures["steps"] = read_json(run_dir / "progress.json" if run_dir else None).get("step")
    if code != 0:
        return [row.fail(f"launch {exited(code)}", output_of(logfile, run_dir))]
    if not metrics or not all(math.isfinite(v) for v in metrics.values()):
        return [row.fail("no finite test metrics in evaluate.json", output_of(logfile, run_dir))]
    problem = device_problem(mode, row.figures)
    if problem:
        return [row.fail(problem, output_of(logfile, run_dir))]
    ter = metrics.get("test/ter")
    if not mode.cpu and ter is not None and ter >= 0.3 * CHANCE_TER:
        return [row.fail(f"test/ter {ter:.3f} is not below {0.3 * CHANCE_TER:.2f} "
                         "(0.3 x chance), as on CPU", output_of(logfile, run_dir))]
    return [row]


FSDP = {"fsdp1": ("FSDP1 sharded", "++trainer.strategy={name:fsdp,state_dict_type:sharded}"),
        "fsdp2": ("FSDP2", "++trainer.strategy={name:fsdp2}")}


def check_fsdp(mode: Mode, key: str) -> list[Row]:
    """Stop mid-training, resume on as many devices; FSDP2 with N >= 2: stop again and
    resume on N/2 (resharding)."""
    title, strategy = FSDP[key]
    n = mode.devices
    row = Row(f"{title}: checkpoint + resume, {mode.units(n)}")
    half = Row(f"{title}: resume on {mode.units(n // 2) if n >= 2 else 'N/2'} (reshard)")
    reshard = key == "fsdp2"
    if mode.cpu and key == "fsdp1":
        return [row.skip("FSDP1 needs GPUs (the launcher refuses fsdp on CPU)")]
    if n < 2 and reshard:
        half.skip(f"needs 2 {mode.unit}s")
    exp = mode.work / key
    # A progress line (and progress.json) every step, so the stop can be timed.
    common = [strategy, f"++trainer.precision={mode.precision}", "trainer.log_every_n_steps=1",
              *mode.stoppable(n)]
    argv = launch_argv(exp, *mode.on(n), *common)
    row.commands.append(shown(argv) + "   # SIGTERM to launch at step >= 2 (exit 143)")
    row.commands.append(shown(argv) + ("   # the same: resumes; SIGTERM 3 steps on (exit 143)"
                                       if key == "fsdp2" and n >= 2 else
                                       "   # the same: resumes, runs to the end"))
    code, wall, stopped, run_dir, why = interrupt(mode, argv, exp, mode.work / f"{key}.1.log",
                                                  2, 180)
    row.figures["1st launch s"] = round(wall, 1)
    row.figures["stopped at step"] = stopped
    rows = [row, half] if reshard else [row]
    if why:
        row.fail(f"1st launch: {why}", output_of(mode.work / f"{key}.1.log", run_dir))
        if reshard and half.status != "skipped":
            half.skip("the run before it failed")
        return rows
    total, launches = wall, 1
    stop_again = reshard and n >= 2
    if stop_again:  # stopped once more mid-epoch, so that N/2 ranks take over a position
        for attempt in (2, 3):
            logfile = mode.work / f"{key}.{attempt}.log"
            code, wall, stopped_b, run_dir, why = interrupt(mode, argv, exp, logfile,
                                                            stopped + 3, 180)
            total += wall
            launches += 1
            per_epoch = batches_per_epoch(run_dir)
            if why or not per_epoch or stopped_b % per_epoch:
                break
            log(f"    stopped on an epoch's last batch (step {stopped_b}): once more")
            stopped = stopped_b
        row.figures["last launch s"] = round(wall, 1)
        row.figures["stopped again at step"] = stopped_b
    else:
        logfile = mode.work / f"{key}.2.log"
        code, wall = mode.run(argv, logfile, 240)
        total += wall
        launches += 1
        run_dir = run_dir or run_dir_of(exp)
        row.figures["2nd launch s"] = round(wall, 1)
        why = "" if code == 0 else f"2nd launch {exited(code)}"
    row.wall_s = total
    row.figures["launches"] = launches
    row.figures.update(trained_on(run_dir, not mode.cpu))
    text = run_log(run_dir)
    problem = why or ("" if "resuming from" in text else "run.log has no 'resuming from'") \
        or checkpoint_folder_problem(run_dir) or device_problem(mode, row.figures)
    if not stop_again and not problem:
        metrics = test_metrics(run_dir)
        row.figures.update(metrics)
        if not metrics:
            problem = "no test metrics in evaluate.json after the resumed run"
    if problem:
        row.fail(problem, output_of(logfile, run_dir))
        if stop_again:
            half.skip("the run before it failed")
        return rows
    last = run_dir / "checkpoints" / "last.ckpt"
    row.figures["last.ckpt files"] = len(list(last.iterdir()))
    if not stop_again:
        return rows
    # N/2 devices take over the stopped run (same run folder: resources do not name it).
    argv_half = launch_argv(exp, *mode.on(n // 2), *common)
    half.commands.append(shown(argv_half))
    logfile = mode.work / f"{key}.half.log"
    code, half.wall_s = mode.run(argv_half, logfile, 240)
    text = run_log(run_dir)
    state = read_json(run_dir / "status.json").get("state")
    half.figures.update(test_metrics(run_dir))
    found = re.search(r"the checkpoint was written by (\d+) rank\(s\) and this run has (\d+)",
                      text)
    if found:
        half.figures["ranks"] = f"{found.group(1)} -> {found.group(2)}"
    if code != 0:
        half.fail(f"launch on {mode.units(n // 2)} {exited(code)}", output_of(logfile, run_dir))
    elif not found:
        half.fail("run.log has no 'the checkpoint was written by'", output_of(logfile, run_dir))
    elif state != "completed":
        half.fail(f"state {state}, not completed", output_of(logfile, run_dir))
    return rows


def check_ddp(mode: Mode) -> list[Row]:
    n = mode.devices
    row = Row(f"DDP ({mode.backend}), {mode.units(n)}")
    if n < 2:
        return [row.skip(f"needs 2 GPUs (this machine has {n})")]
    exp = mode.work / "ddp"
    argv = launch_argv(exp, "trainer=ddp", *mode.on(n), f"++trainer.precision={mode.precision}",
                       *mode.short)
    row.commands.append(shown(argv))
    logfile = mode.work / "ddp.log"
    code, row.wall_s = mode.run(argv, logfile, 240)
    run_dir = run_dir_of(exp)
    row.figures.update(test_metrics(run_dir))
    row.figures.update(trained_on(run_dir, not mode.cpu))
    if code != 0:
        return [row.fail(f"launch {exited(code)}", output_of(logfile, run_dir))]
    problem = device_problem(mode, row.figures)
    backend = row.figures.get("backend")
    if not problem and backend is not None and backend != mode.backend:
        problem = f"distributed backend {backend}, not {mode.backend}"
    if not problem and not test_metrics(run_dir):
        problem = "no test metrics in evaluate.json"
    return [row.fail(problem, output_of(logfile, run_dir)) if problem else row]


def check_b1(mode: Mode) -> list[Row]:
    row = Row(f"B1 shared path vs hand-written Lightning, {'CPU' if mode.cpu else '1 GPU'}")
    out = mode.work / "b1" / "RESULTS.md"
    # Three repetitions on GPUs while the budget allows (B1 runs last).
    reps = 1 if mode.cpu or mode.budget.left() < 120 else 3
    argv = [PYTHON, str(BENCH / "run.py"), "--only", "B1", "--quick", "--reps", str(reps),
            "--no-profile", "--out", str(out)]
    prefix = "" if mode.cpu else "BENCH_DEVICE=gpu "
    row.commands.append(prefix + shown(argv).replace(str(ROOT) + "/", ""))
    saved = dict(mode.env)
    if not mode.cpu:
        mode.env["BENCH_DEVICE"] = "gpu"
    try:
        logfile = mode.work / "b1.log"
        code, row.wall_s = mode.run(argv, logfile, 200)
    finally:
        mode.env.clear()
        mode.env.update(saved)
    report = read_json(out.with_suffix(".json"))
    figures = [f for s in report.get("sections", []) if s.get("key") == "B1"
               for f in s.get("figures", [])]
    shared = next((f for f in figures if f["name"].endswith("shared path (launch)")), None)
    versus_torch = next((f for f in figures if f["name"].endswith("shared path vs plain PyTorch")),
                        None)
    if shared:
        row.figures["ratio shared/Lightning"] = shared.get("ratio")
        row.figures["shared steps/s"] = shared.get("value")
        row.figures["Lightning steps/s"] = shared.get("baseline_value")
    if versus_torch:
        row.figures["ratio shared/torch"] = versus_torch.get("ratio")
    row.figures["reps"] = reps
    if code != 0:
        return [row.fail(f"bench/run.py {exited(code)}", tail(logfile, 30))]
    if not shared or not isinstance(shared.get("ratio"), int | float):
        return [row.fail("no B1 ratio in the bench report", tail(logfile, 30))]
    if not mode.cpu:
        text = logfile.read_text(errors="replace")
        if "on one GPU" not in text:
            return [row.fail("B1 did not say it ran on one GPU", tail(logfile, 30))]
    return [row]


CHECK_FUNCTIONS: dict[str, Callable[[Mode], list[Row]]] = {
    "tones": check_tones,
    "fsdp1": lambda mode: check_fsdp(mode, "fsdp1"),
    "fsdp2": lambda mode: check_fsdp(mode, "fsdp2"),
    "ddp": check_ddp,
    "b1": check_b1,
}
MIN_LEFT_S = {"tones": 20, "fsdp1": 30, "fsdp2": 30, "ddp": 20, "b1": 30}  # else not started


# ----------------------------------------------------------------------------- main

def gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count()


def job_path(work: Path) -> Path:
    """The folder on the jobs' PYTHONPATH: copies of JOB_MODULES."""
    path = work / "path"
    path.mkdir()
    for name in JOB_MODULES:
        shutil.copy(Path(__file__).with_name(f"{name}.py"), path / f"{name}.py")
    return path


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true",
                        help="rehearse the flow on CPU: 2 processes, gloo, FSDP2 only, 32-bit")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default bench/GPU_RESULTS.md on GPUs; a temporary "
                             "file with --cpu, which never writes bench/GPU_RESULTS.md)")
    parser.add_argument("--only", default="", help=f"comma-separated checks of {','.join(CHECKS)}")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch folder (kept anyway when a check failed)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help=f"time for all checks (default {GPU_BUDGET_S:.0f} s on GPUs, "
                             f"{CPU_BUDGET_S:.0f} s with --cpu)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    chosen = [c.strip().lower() for c in args.only.split(",") if c.strip()] or list(CHECKS)
    unknown = sorted(set(chosen) - set(CHECKS))
    if unknown:
        print(f"gpu-check: unknown check(s) {', '.join(unknown)}; choose from "
              f"{', '.join(CHECKS)}", file=sys.stderr)
        return 2
    if args.cpu:
        if args.out is not None and args.out.resolve() == DEFAULT_OUT.resolve():
            print(f"gpu-check: --cpu never writes {os.path.relpath(DEFAULT_OUT, ROOT)}; "
                  "choose another --out", file=sys.stderr)
            return 2
        gpus = 0
    else:
        gpus = gpu_count()
        if gpus == 0:
            print(NO_GPU, file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    out = args.out or (work.with_name(work.name + "-RESULTS.md") if args.cpu else DEFAULT_OUT)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LAUNCHER_STATE_DIR": str(work / "state"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(job_path(work)),
                                                       os.environ.get("PYTHONPATH")]))}
    env.pop("BENCH_DEVICE", None)
    if args.cpu:  # two ranks on a small machine: one thread each (B1 sets its own)
        env["OMP_NUM_THREADS"] = "1"
    budget = Budget(args.budget_s or (CPU_BUDGET_S if args.cpu else GPU_BUDGET_S))
    mode = Mode(cpu=args.cpu, gpus=gpus, work=work, budget=budget, env=env)
    started = time.monotonic()
    log(f"gpu-check: {'CPU rehearsal (--cpu)' if args.cpu else f'{gpus} GPU(s)'}; checks "
        f"{', '.join(chosen)}; budget {budget.seconds:.0f} s; scratch {work}")
    info = machine(args.cpu)
    log(f"machine: {info['GPUs']}; torch {info['torch']}, CUDA {info['CUDA (torch)']}, "
        f"driver {info['driver']}")
    rows: list[Row] = []
    try:
        for key in chosen:
            if budget.left() < MIN_LEFT_S[key]:
                rows.append(Row(key).fail(f"not started: {budget.left():.0f} s of the "
                                          f"{budget.seconds:.0f} s budget left"))
                log(f"{key}: not started, the time budget is spent")
                continue
            log(f"{key}: start ({budget.left():.0f} s of the budget left)")
            begun = time.monotonic()
            try:
                new = CHECK_FUNCTIONS[key](mode)
            except Exception as exc:  # a bug or an unexpected state: report it, run the rest
                import traceback

                new = [Row(key).fail(f"{type(exc).__name__}: {exc}", traceback.format_exc())]
            finally:
                mode.kill_all()
            for row in new:
                if row.wall_s is None and row.status != "skipped":
                    row.wall_s = time.monotonic() - begun
                log(f"{key}: {row.name}: {row.status}{': ' + row.reason if row.reason else ''}")
            rows.extend(new)
    except KeyboardInterrupt:
        mode.kill_all()
        log("interrupted: nothing written")
        return 130
    elapsed = time.monotonic() - started
    table = format_table(rows)
    print("\n" + table + "\n", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(format_report(rows, info, cpu=args.cpu, elapsed_s=elapsed))
    failed = [row for row in rows if row.status == "failed"]
    if failed or args.keep:
        log(f"scratch folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {out} ({elapsed:.0f} s): {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
