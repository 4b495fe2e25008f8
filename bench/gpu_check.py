"""`make gpu-check`: the launcher on real GPUs, in one prepared script (under 5 minutes).

    python bench/gpu_check.py                 # GPUs: writes bench/GPU_RESULTS.md
    python bench/gpu_check.py --cpu           # the same flow on CPU, a rehearsal (temp file)
    python bench/gpu_check.py --only tones,b1 --keep

Checks, each a row of the results table (passed, failed or skipped with the reason,
wall time, figures):

1. tones: `launch egs3/tones/asr1` on one GPU in bf16; the test metrics of evaluate.json.
2. fsdp1, fsdp2: FSDP with sharded checkpoints on all N GPUs, stopped mid-training
   (SIGTERM to `launch`, exit 143) and launched again: run.log says "resuming from",
   checkpoints/last.ckpt is a folder with meta.pt and .metadata. With N >= 2 the FSDP2
   run is stopped once more and resumed on N/2 GPUs (run.log: "the checkpoint was
   written by", resharding).
3. ddp: DDP over NCCL on N >= 2 GPUs.
4. b1: bench B1 (shared path against hand-written Lightning) on one GPU
   (`BENCH_DEVICE=gpu bench/run.py --only B1 --quick`).

`--cpu` rehearses the same flow without GPUs: 2 processes instead of N GPUs (gloo),
FSDP2 only (FSDP1 needs GPUs), 32-bit, one epoch. Without a GPU and without `--cpu`
the script exits 2 with one line and writes nothing. Every command runs with a
timeout, and the checks share a time budget; the exit status is 0 only if no check
failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
DEFAULT_OUT = BENCH / "GPU_RESULTS.md"
RECIPE = "egs3/tones/asr1"
PYTHON = sys.executable
LAUNCH = str(Path(sys.executable).with_name("launch"))
NO_GPU = ("gpu-check: no GPU visible (torch.cuda.device_count() == 0); run it on a machine "
          "with an NVIDIA GPU")
CHECKS = ("tones", "fsdp1", "fsdp2", "ddp", "b1")
GPU_BUDGET_S = 285.0  # all checks together, on GPUs: `make gpu-check` stays under 5 minutes
CPU_BUDGET_S = 600.0  # the --cpu rehearsal on a small machine
CHANCE_TER = 0.9  # the tones recipe's token error rate by chance (tests/test_tones_recipe.py)
STOP_EXIT = 143  # `launch` after SIGTERM: checkpointed and stopped
CKPT_FILES = ("meta.pt", ".metadata")  # what a sharded checkpoint folder must hold


# ----------------------------------------------------------------------------- results

@dataclass
class Row:
    """One check: its status ('passed', 'failed' or 'skipped'), why, and what it measured."""

    name: str
    status: str = "passed"
    reason: str = ""
    wall_s: float | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    details: str = ""  # the end of the output of what failed

    def fail(self, reason: str, details: str = "") -> Row:
        self.status, self.reason = "failed", reason
        self.details = details or self.details
        return self

    def skip(self, reason: str) -> Row:
        self.status, self.reason = "skipped", reason
        return self


def _cell(text: Any) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def format_table(rows: Sequence[Row]) -> str:
    """The results as a Markdown table: check, result (with the reason), wall time, figures."""
    lines = ["| check | result | wall s | figures |", "|---|---|---:|---|"]
    for row in rows:
        result = row.status if not row.reason else f"{row.status}: {row.reason}"
        wall = "" if row.wall_s is None else f"{row.wall_s:.1f}"
        figures = "; ".join(f"{k} {_figure(v)}" for k, v in row.figures.items())
        lines.append(f"| {_cell(row.name)} | {_cell(result)} | {wall} | {_cell(figures)} |")
    return "\n".join(lines)


def format_report(rows: Sequence[Row], machine: dict[str, str], *, cpu: bool,
                  elapsed_s: float) -> str:
    """The whole results file: machine, table, the commands of each check, what failed."""
    title = "GPU check" + (" (CPU rehearsal: --cpu)" if cpu else "")
    out = [f"# {title}", "",
           f"`make gpu-check` (bench/gpu_check.py), {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
           f"{elapsed_s:.0f} s in all.", "", "| | |", "|---|---|"]
    out += [f"| {_cell(k)} | {_cell(v)} |" for k, v in machine.items()]
    counts = {s: sum(r.status == s for r in rows) for s in ("passed", "failed", "skipped")}
    out += ["", f"{counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped.", "", format_table(rows), "", "## Commands", ""]
    for row in rows:
        if row.commands:
            out.append(f"- {row.name}:")
            out += [f"  - `{command}`" for command in row.commands]
    failed = [row for row in rows if row.status == "failed" and row.details]
    if failed:
        out += ["", "## What failed", ""]
        for row in failed:
            out += [f"### {row.name}", "", "```", row.details.rstrip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------- running

def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def shown(argv: Sequence[str]) -> str:
    """A command as typed, from the repository root."""
    parts = [os.path.relpath(a, ROOT) if a in (LAUNCH, PYTHON) else a for a in argv]
    return " ".join(parts)


class Budget:
    """The checks' shared time: every command's timeout is cut to what is left."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def timeout(self, limit: float) -> float:
        return max(1.0, min(limit, self.left()))


class Proc:
    """A command started in a session of its own, its output in a log file."""

    def __init__(self, argv: Sequence[str], logfile: Path, env: dict[str, str]) -> None:
        self.argv, self.logfile = list(argv), logfile
        self.started = time.monotonic()
        self._file = open(logfile, "w")  # noqa: SIM115 - closed in wait()/kill()
        self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=env, stdout=self._file,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None after killing the whole process group at the timeout."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        finally:
            self._file.close()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=30)
        self._file.close()

    @property
    def wall_s(self) -> float:
        return time.monotonic() - self.started


@dataclass
class Mode:
    """What differs between the GPU run and the CPU rehearsal."""

    cpu: bool
    gpus: int  # N: GPUs present (0 with --cpu)
    work: Path
    budget: Budget
    env: dict[str, str]
    live: list[Proc] = field(default_factory=list)

    @property
    def precision(self) -> str:
        return "32-true" if self.cpu else "bf16-mixed"

    @property
    def devices(self) -> int:
        """Devices of the multi-device checks: N GPUs, or 2 CPU processes."""
        return 2 if self.cpu else self.gpus

    def on(self, devices: int) -> list[str]:
        """The resources override for `devices` GPUs (or CPU processes)."""
        if self.cpu:
            return [f"resources.processes_per_node={devices}"]
        return [f"resources.gpus_per_node={devices}"]

    @property
    def unit(self) -> str:
        return "process" if self.cpu else "GPU"

    def units(self, n: int) -> str:
        return f"{n} {self.unit}{'es' if self.cpu and n != 1 else 's' if n != 1 else ''}"

    @property
    def short(self) -> list[str]:
        """The rehearsal trains one epoch; on GPUs the recipe's own six."""
        return ["trainer.max_epochs=1"] if self.cpu else []

    @property
    def accelerator(self) -> str:
        return "cpu" if self.cpu else "gpu"

    @property
    def backend(self) -> str:
        return "gloo" if self.cpu else "nccl"

    def start(self, argv: Sequence[str], logfile: Path) -> Proc:
        log(f"  $ {shown(argv)}")
        proc = Proc(argv, logfile, self.env)
        self.live.append(proc)
        return proc

    def run(self, argv: Sequence[str], logfile: Path, limit: float) -> tuple[int | None, float]:
        """Run to the end (or the timeout); the exit status (None: timed out) and wall time."""
        proc = self.start(argv, logfile)
        code = proc.wait(self.budget.timeout(limit))
        self.live.remove(proc)
        log(f"    exit {code if code is not None else 'none: timed out'} "
            f"after {proc.wall_s:.1f} s")
        return code, proc.wall_s

    def kill_all(self) -> None:
        for proc in self.live:
            proc.kill()
        self.live.clear()


def launch_argv(exp: Path, *overrides: str) -> list[str]:
    return [LAUNCH, RECIPE, f"exp_root={exp}", *overrides]


def run_dir_of(exp: Path) -> Path | None:
    """The run folder under exp_root: the folder other than `sweeps`."""
    if not exp.is_dir():
        return None
    found = sorted(p for p in exp.iterdir() if p.is_dir() and p.name != "sweeps")
    return found[0] if found else None


def read_json(path: Path | None) -> dict[str, Any]:
    try:
        return json.loads(path.read_text() or "{}") if path else {}
    except (OSError, ValueError):
        return {}


def run_log(run_dir: Path | None) -> str:
    try:
        return (run_dir / "run.log").read_text(errors="replace") if run_dir else ""
    except OSError:
        return ""


def test_metrics(run_dir: Path | None) -> dict[str, float]:
    metrics = read_json(run_dir / "evaluate.json" if run_dir else None).get("metrics") or {}
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


def trained_on(run_dir: Path | None) -> dict[str, Any]:
    """Figures from the run's config.yaml and run.log: accelerator, devices, GPU use,
    distributed backend."""
    figures: dict[str, Any] = {}
    try:
        import yaml

        config = yaml.safe_load((run_dir / "config.yaml").read_text()) if run_dir else {}
        trainer = (config or {}).get("trainer") or {}
        for key in ("accelerator", "devices", "precision"):
            if key in trainer:
                figures[key] = trainer[key]
    except (OSError, ValueError, ImportError):
        pass
    text = run_log(run_dir)
    used = re.findall(r"GPU available: \w+, used: (\w+)", text)
    if used:
        figures["GPU used"] = used[-1]
    backend = re.findall(r"distributed_backend=(\w+)", text)
    if backend:
        figures["backend"] = backend[-1]
    return figures


def device_problem(mode: Mode, figures: dict[str, Any]) -> str:
    """Why the run did not train where it should have, or ''."""
    accelerator = str(figures.get("accelerator", ""))
    if accelerator and accelerator != mode.accelerator and not (
            mode.accelerator == "gpu" and accelerator == "cuda"):
        return f"trained with accelerator {accelerator}, not {mode.accelerator}"
    if not mode.cpu and figures.get("GPU used") == "False":
        return "Lightning says GPU used: False"
    return ""


def output_of(logfile: Path, run_dir: Path | None) -> str:
    parts = [f"--- {logfile.name} (end)", tail(logfile)]
    if run_dir is not None and (run_dir / "run.log").is_file():
        parts += ["--- run.log (end)", tail(run_dir / "run.log")]
    return "\n".join(parts)


def wait_for_step(mode: Mode, proc: Proc, exp: Path, step: int, limit: float
                  ) -> tuple[Path | None, int]:
    """Poll the run's progress.json until it reports `step` (or the process ended, or the
    timeout); the run folder and the last step seen."""
    deadline = time.monotonic() + mode.budget.timeout(limit)
    seen, run_dir = -1, None
    while time.monotonic() < deadline and proc.running():
        run_dir = run_dir or run_dir_of(exp)
        seen = int(read_json(run_dir / "progress.json" if run_dir else None).get("step", -1))
        if seen >= step:
            break
        time.sleep(0.05)
    return run_dir, seen


def interrupt(mode: Mode, argv: list[str], exp: Path, logfile: Path, after_step: int,
              limit: float) -> tuple[int | None, float, int, Path | None, str]:
    """Launch, wait until training passed `after_step`, SIGTERM `launch`, wait for it.
    Returns exit status, wall time, the step it stopped at, the run folder and, on a
    problem, why."""
    proc = mode.start(argv, logfile)
    run_dir, seen = wait_for_step(mode, proc, exp, after_step, limit)
    if proc.running() and seen >= after_step:
        log(f"    at step {seen}: SIGTERM to launch (pid {proc.popen.pid})")
        proc.popen.send_signal(signal.SIGTERM)
        code = proc.wait(mode.budget.timeout(180))
        why = ""
    elif proc.running():
        proc.kill()
        code, why = None, f"no step {after_step} within the time limit (last seen {seen})"
    else:
        code = proc.wait(5)
        why = f"launch ended (exit {code}) before step {after_step} could be interrupted"
    mode.live.remove(proc)
    run_dir = run_dir or run_dir_of(exp)
    stopped = int(read_json(run_dir / "status.json" if run_dir else None).get("step", -1))
    log(f"    exit {code if code is not None else 'none'} after {proc.wall_s:.1f} s, "
        f"stopped at step {stopped}")
    if not why and code != STOP_EXIT:
        why = f"exit {code} after SIGTERM, not {STOP_EXIT}"
    return code, proc.wall_s, stopped, run_dir, why


def checkpoint_folder_problem(run_dir: Path | None) -> str:
    last = run_dir / "checkpoints" / "last.ckpt" if run_dir else None
    if last is None or not last.exists():
        return "checkpoints/last.ckpt is missing"
    if not last.is_dir():
        return "checkpoints/last.ckpt is a file, not a sharded folder"
    missing = [name for name in CKPT_FILES if not (last / name).is_file()]
    return f"checkpoints/last.ckpt has no {', '.join(missing)}" if missing else ""


def batches_per_epoch(run_dir: Path | None) -> int | None:
    found = re.findall(r"batch \d+/(\d+)", run_log(run_dir))
    return int(found[-1]) if found else None


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
    row.figures.update(trained_on(run_dir))
    row.figures["steps"] = read_json(run_dir / "progress.json" if run_dir else None).get("step")
    if code != 0:
        return [row.fail(f"launch exited {code}", output_of(logfile, run_dir))]
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
        return [row.skip("FSDP1 cannot run on CPU (Lightning refuses fsdp on cpu)")]
    if n < 2 and reshard:
        half.skip(f"needs 2 {mode.unit}s")
    exp = mode.work / key
    # A progress line (and progress.json) every step, so the stop can be timed.
    common = [strategy, f"++trainer.precision={mode.precision}", "trainer.log_every_n_steps=1",
              *mode.short]
    argv = launch_argv(exp, *mode.on(n), *common)
    row.commands.append(shown(argv) + "   # SIGTERM at step >= 2, then again")
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
    total = wall
    stop_again = reshard and n >= 2
    if stop_again:  # stopped once more mid-epoch, so that N/2 ranks take over a position
        for attempt in (2, 3):
            logfile = mode.work / f"{key}.{attempt}.log"
            code, wall, stopped_b, run_dir, why = interrupt(mode, argv, exp, logfile,
                                                            stopped + 3, 180)
            total += wall
            per_epoch = batches_per_epoch(run_dir)
            if why or not per_epoch or stopped_b % per_epoch:
                break
            log(f"    stopped on an epoch's last batch (step {stopped_b}): once more")
            stopped = stopped_b
        row.figures["2nd launch s"] = round(wall, 1)
        row.figures["stopped again at step"] = stopped_b
    else:
        logfile = mode.work / f"{key}.2.log"
        code, wall = mode.run(argv, logfile, 240)
        total += wall
        run_dir = run_dir or run_dir_of(exp)
        row.figures["2nd launch s"] = round(wall, 1)
        why = "" if code == 0 else f"2nd launch exited {code}"
    row.wall_s = total
    row.figures.update(trained_on(run_dir))
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
        half.fail(f"launch on {mode.units(n // 2)} exited {code}", output_of(logfile, run_dir))
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
    row.figures.update(trained_on(run_dir))
    if code != 0:
        return [row.fail(f"launch exited {code}", output_of(logfile, run_dir))]
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
    reps = 1 if mode.cpu else 3
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
        return [row.fail(f"bench/run.py exited {code}", tail(logfile, 30))]
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


# ----------------------------------------------------------------------------- machine

def quiet(argv: Sequence[str], timeout: float = 30) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def machine(cpu: bool) -> dict[str, str]:
    """GPUs (asked in a child process: this one keeps no CUDA context), versions, driver."""
    probe = ("import json, torch, pytorch_lightning as pl; n = torch.cuda.device_count(); "
             "print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, "
             "'cudnn': torch.backends.cudnn.version(), 'lightning': pl.__version__, "
             "'nccl': '.'.join(map(str, torch.cuda.nccl.version())) if n else None, "
             "'gpus': [torch.cuda.get_device_name(i) for i in range(n)]}))")
    facts = read_json_text(quiet([PYTHON, "-c", probe], timeout=120))
    gpus = facts.get("gpus") or []
    names = sorted(set(gpus))
    info = {"mode": "CPU rehearsal (--cpu): processes instead of GPUs" if cpu else "GPU",
            "GPUs": f"{len(gpus)} x {', '.join(names)}" if gpus else "none",
            "driver": "", "torch": str(facts.get("torch", "?")),
            "CUDA (torch)": str(facts.get("cuda")), "cuDNN": str(facts.get("cudnn")),
            "NCCL": str(facts.get("nccl")), "Lightning": str(facts.get("lightning", "?")),
            "python": platform.python_version(), "host": platform.node(),
            "CPU cores": str(len(os.sched_getaffinity(0)))}
    smi = quiet(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    drivers = sorted({line.rsplit(",", 1)[-1].strip() for line in smi.splitlines() if "," in line})
    info["driver"] = ", ".join(drivers) if drivers else "not available (no nvidia-smi answer)"
    return info


def read_json_text(text: str) -> dict[str, Any]:
    try:
        return json.loads(text.splitlines()[-1]) if text else {}
    except (ValueError, IndexError):
        return {}


def gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count()


# ----------------------------------------------------------------------------- main

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
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LAUNCHER_STATE_DIR": str(work / "state")}
    env.pop("BENCH_DEVICE", None)
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
