"""What every benchmark shares: figures and sections, running commands, reading clocks.

A benchmark is a function `run(ctx) -> Section`. A `Section` holds `Figure`s:
each the median of several repetitions, optionally with the median of a
baseline measured in the same run and the target the issue sets. Nothing here
imports torch or the launcher: the orchestrator stays light, and every path
is measured in a process of its own, started the same way.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RECIPE = BENCH / "recipe"
BASELINES = BENCH / "baselines"
PYTHON = sys.executable
LAUNCH = str(Path(sys.executable).with_name("launch"))
EVENTS_ENV = "BENCH_EVENTS"  # read by bench/recipe/src/clock.py
T = TypeVar("T")


class BenchError(RuntimeError):
    """A measured command failed; the message carries the end of its output."""


@dataclass
class Figure:
    """One measured quantity: the median of `samples`, maybe against a baseline."""

    name: str
    samples: list[float]
    unit: str
    higher_is_better: bool = False
    baseline: Figure | None = None
    target: str = ""  # as the issue states it, e.g. "<= 1.3x"
    holds: bool | None = None  # whether the target holds; None: no target
    note: str = ""

    @property
    def value(self) -> float | None:
        finite = [s for s in self.samples if math.isfinite(s)]
        return statistics.median(finite) if finite else None

    @property
    def ratio(self) -> float | None:
        """This figure over its baseline (both medians)."""
        if self.baseline is None or self.value is None or not self.baseline.value:
            return None
        return self.value / self.baseline.value

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit,
                "samples": self.samples, "baseline": self.baseline.name if self.baseline else None,
                "baseline_value": self.baseline.value if self.baseline else None,
                "ratio": self.ratio, "target": self.target, "holds": self.holds,
                "note": self.note}


@dataclass
class Section:
    key: str  # "B1"
    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: str = ""  # why the section could not be measured at all
    profile_argv: list[str] | None = None  # the command whose profile explains its worst ratio
    profile_env: dict[str, str] | None = None
    profile_focus: str = ""  # pstats regex for the functions that explain the ratio
    profile_baseline_argv: list[str] | None = None  # profiled too; differences shown
    profile_steps: int = 0  # >0: profile the training loop only, over this many steps
    profile_always: bool = False  # profiled even when its target holds
    worst: float | None = None  # how far the worst figure is from its target (>1: missed)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "unavailable": self.unavailable,
                "notes": self.notes, "figures": [f.as_dict() for f in self.figures]}


def slurm_section(ctx: Context, key: str, title: str) -> Section:
    """A section measured on the local SLURM cluster: marked unavailable when it is down."""
    section = Section(key, title)
    if not ctx.slurm:
        section.unavailable = "the local SLURM cluster is not up (make slurm-up)"
    return section


@dataclass
class Context:
    """Settings of one benchmark run, handed to every section."""

    quick: bool
    work: Path  # scratch folder for run directories, logs and shims
    slurm: bool  # the local SLURM cluster answers
    reps: int  # repetitions of each measurement (medians are reported)
    log: Callable[[str], None] = print

    def folder(self, *parts: str) -> Path:
        path = self.work.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path


def bench_env(extra: Mapping[str, str] | None = None, *, threads: int | None = None
              ) -> dict[str, str]:
    """The environment every measured process gets.

    Progress bars off (no terminal), and no stray events file. `threads`
    pins OpenMP's threads: on a small shared machine, busy-waiting OpenMP
    threads of two processes turn every step into noise.
    """
    env = {k: v for k, v in os.environ.items() if k not in (EVENTS_ENV, "OMP_NUM_THREADS")}
    env["PYTHONUNBUFFERED"] = "1"
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    env.update(extra or {})
    return env


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 300,
        cwd: Path = ROOT, check: bool = True, cpu: int | None = None
        ) -> subprocess.CompletedProcess:
    """Run a command to its end (on core `cpu` alone, if given); on failure raise with
    the end of its output."""
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    try:
        done = subprocess.run(list(argv), env=dict(env) if env else bench_env(), cwd=cwd,
                              capture_output=True, text=True, timeout=timeout,
                              preexec_fn=pin)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(argv[:4])} ... timed out after {timeout:.0f} s") from None
    if check and done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise BenchError(f"{' '.join(map(str, argv[:4]))} ... exited {done.returncode}:\n  "
                         + "\n  ".join(tail))
    return done


def timed(argv: Sequence[str], **kwargs: Any) -> float:
    """Wall seconds of one command, start to exit."""
    start = time.perf_counter()
    run(argv, **kwargs)
    return time.perf_counter() - start


def read_events(path: Path) -> list[dict[str, Any]]:
    """The JSON lines a training process wrote through `bench/recipe/src/clock.py`."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def last_event(path: Path, kind: str) -> dict[str, Any]:
    found = [e for e in read_events(path) if e.get("event") == kind]
    if not found:
        raise BenchError(f"no '{kind}' event in {path}: the training path did not report")
    return found[-1]


def steps_per_s(step_ends: Sequence[float], warmup: int) -> float:
    """Steady-state rate: steps completed after `warmup` steps over the time they took.

    A mean over the window, not a median of step times, so periodic costs
    (logging every n steps, a flush) count as they do for the user.
    """
    if len(step_ends) <= warmup + 1:
        raise BenchError(f"only {len(step_ends)} steps recorded, fewer than warmup {warmup}")
    return (len(step_ends) - warmup) / (step_ends[-1] - step_ends[warmup - 1])


def median_step_ms(step_ends: Sequence[float], warmup: int) -> float:
    """The typical step, robust to the odd step lost to another process on the machine."""
    window = step_ends[warmup - 1:]
    return 1e3 * statistics.median(b - a for a, b in itertools.pairwise(window))


def fastest_window_ms(step_ends: Sequence[float], warmup: int, width: int = 100) -> float:
    """The mean step of the fastest `width` consecutive steps: what a step costs when
    nothing else on the machine gets in the way (other work only ever adds time)."""
    ends = step_ends[warmup - 1:]
    if len(ends) <= width:
        return 1e3 * (ends[-1] - ends[0]) / max(1, len(ends) - 1)
    return 1e3 * min(ends[i + width] - ends[i] for i in range(len(ends) - width)) / width


def interleaved(reps: int, paths: Mapping[str, Callable[[int], T]]) -> dict[str, list[T]]:
    """Run each path once per repetition, in turn (A B C A B C ...), so that a slow
    patch of the machine hits every path alike; return the samples per path."""
    samples: dict[str, list[T]] = {name: [] for name in paths}
    for rep in range(reps):
        for name, measure in paths.items():
            samples[name].append(measure(rep))
    return samples


def side_by_side(reps: int, pairs: Sequence[tuple[str, str | None]],
                 paths: Mapping[str, Callable[[int, int | None], T]]) -> dict[str, list[T]]:
    """Run the two paths of each pair at the same time, each on a core of its own (the
    cores swapped every repetition), pair after pair, `reps` times.

    On a machine whose host also runs other work, whole runs are at times 10-30%
    slower; paths measured one after the other then differ by more than the few
    percent being measured. Side by side, both paths of a pair meet the same
    conditions. Without two cores, the paths run one after the other."""
    import threading

    samples: dict[str, list[T]] = {name: [] for pair in pairs for name in pair if name}
    two_cores = len(os.sched_getaffinity(0)) >= 2
    for rep in range(reps):
        for pair in pairs:
            names = [name for name in pair if name]
            if not two_cores:
                for name in names:
                    samples[name].append(paths[name](rep, None))
                continue
            results: dict[str, Any] = {}

            def measure(name: str, cpu: int, rep: int = rep,
                        results: dict = results) -> None:
                try:
                    results[name] = paths[name](rep, cpu)
                except BaseException as exc:  # raised below, in the caller's thread
                    results[name] = exc

            threads = [threading.Thread(target=measure, args=(name, (i + rep) % 2))
                       for i, name in enumerate(names)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for name in names:
                if isinstance(results[name], BaseException):
                    raise results[name]
                samples[name].append(results[name])
    return samples


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"
