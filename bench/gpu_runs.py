"""`make gpu-check`'s processes and run folders: the commands it starts (each in a session of
its own, with a timeout cut to the shared time budget), what differs between GPUs and the
CPU rehearsal (`Mode`), and what a finished or stopped `launch` left in its run folder."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "egs3/tones/asr1"
PYTHON = sys.executable
LAUNCH = str(Path(sys.executable).with_name("launch"))
STOP_EXIT = 143  # `launch` after SIGTERM: checkpointed and stopped
CKPT_FILES = ("meta.pt", ".metadata")  # what a sharded checkpoint folder must hold
# Several ranks stop up to ~2.5 s after SIGTERM to `launch` (it passes the signal on when it
# next polls its jobs, every 2 s): each training step then pauses PAUSE_S (StepPause), and
# the run has about STEPS_WITH_RANKS steps, so that both stops land mid-training.
PAUSE_S = 0.1
STEPS_WITH_RANKS = 100
CPU_EPOCHS_WITH_RANKS = 2  # the rehearsal: 48 steps on 2 processes


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


def quiet(argv: Sequence[str], timeout: float = 30) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


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

    def stoppable(self, n: int) -> list[str]:
        """Overrides that let a run on `n` devices be stopped twice mid-training. One GPU
        trains in the `launch` process, which stops at the next step: the recipe as it
        is. Several ranks: a pause every step and enough epochs (see PAUSE_S)."""
        if n == 1 and not self.cpu:
            return []
        epochs = CPU_EPOCHS_WITH_RANKS if self.cpu else \
            max(2, math.ceil(STEPS_WITH_RANKS / steps_per_epoch(n)))
        return [f"++trainer.callbacks=[{{_target_:gpu_check.StepPause,seconds:{PAUSE_S}}}]",
                f"trainer.max_epochs={epochs}"]

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


def steps_per_epoch(ranks: int) -> int:
    """Training steps per epoch of the tones recipe on `ranks` ranks (each its share of the
    utterances, in batches)."""
    import yaml

    config = yaml.safe_load((ROOT / RECIPE / "conf" / "config.yaml").read_text())
    utts, batch = config["dataset"]["train"]["num_utts"], config["dataloader"]["batch_size"]
    return math.ceil(math.ceil(utts / ranks) / batch)


def exited(code: int | None) -> str:
    return "timed out (killed)" if code is None else f"exited {code}"


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


def trained_on(run_dir: Path | None, gpu: bool = True) -> dict[str, Any]:
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
    if used and gpu:
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
        why = f"{exited(code)} after SIGTERM, not {STOP_EXIT}"
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
