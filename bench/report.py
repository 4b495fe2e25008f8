"""Render the sections as a terminal table and as bench/RESULTS.md.

Every figure is a median of repetitions; its ratio is against the baseline
measured in the same run, so the machine's state cancels out of the ratio
(if not out of the absolute figure).
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from common import Figure, Section, load_average


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if unit == "calls":
        text = f"{value:.0f}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 0.1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def spread(figure: Figure) -> str:
    finite = [s for s in figure.samples if math.isfinite(s)]
    if len(finite) < 2:
        return f"n={len(finite)}"
    return f"{fmt(min(finite))} to {fmt(max(finite))}, n={len(finite)}"


def verdict(figure: Figure) -> str:
    if figure.holds is None:
        return ""
    return "yes" if figure.holds else "**no**"


def ratio_text(figure: Figure) -> str:
    if figure.ratio is None:
        return ""
    return f"{figure.ratio:.3f}x {figure.baseline.name.split(': ')[-1]}"


def installed(distribution: str) -> str:
    """The installed version, read from package metadata (no import of torch here)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = [installed(name) for name in ("torch", "pytorch-lightning", "hydra-core",
                                             "submitit")]
    slurm = subprocess.run(["bash", "-c", "sinfo --version 2>/dev/null || echo none"],
                           capture_output=True, text=True).stdout.strip()
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "?"
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpu": cpu,
            "cores": str(os.cpu_count()), "memory": memory,
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "torch": versions[0],
            "pytorch_lightning": versions[1], "hydra-core": versions[2],
            "submitit": versions[3], "slurm": slurm}


def table(sections: Sequence[Section]) -> str:
    """The terminal summary."""
    lines = []
    for section in sections:
        lines.append(f"{section.key} {section.title}")
        if section.unavailable:
            lines.append(f"  not available: {section.unavailable}")
        for fig in section.figures:
            target = f"  target {fig.target}: {'yes' if fig.holds else 'NO'}" \
                if fig.holds is not None else ""
            ratio = f"  ({ratio_text(fig)})" if fig.ratio is not None else ""
            value = fmt(fig.value, fig.unit) if fig.value is not None else \
                f"not available: {fig.note}"
            lines.append(f"  {fig.name:<62} {value:>14}{ratio}{target}")
    return "\n".join(lines)


def markdown(sections: Sequence[Section], info: dict[str, str], *, quick: bool,
             load: tuple[str, str], profile: str, elapsed_s: float) -> str:
    out = ["# Benchmark results", ""]
    if quick:
        out += ["**Quick mode** (`--quick`): few repetitions and short runs; the figures "
                "only show that every benchmark runs.", ""]
    out += ["Written by `make bench` (`bench/run.py`). Each figure is the median of its "
            "repetitions (range in brackets); each ratio is against a baseline measured "
            "in the same run.", "",
            "| machine | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in info.items()]
    out += [f"| load average (start, end) | {load[0]}; {load[1]} |",
            f"| wall time of the benchmark run | {elapsed_s:.0f} s |",
            "| GPU | none lent to this task: B1 and B6 with NCCL on a GPU were not run |", ""]
    out += ["## Targets", "", "| figure | target | measured | holds |", "|---|---|---|---|"]
    for section in sections:
        for fig in section.figures:
            if fig.holds is not None or (fig.target and fig.value is None):
                measured = fmt(fig.value, fig.unit)
                if fig.ratio is not None:
                    measured += f" ({ratio_text(fig)})"
                if fig.value is None:
                    measured = f"not available: {fig.note}"
                out.append(f"| {section.key} {fig.name} | {fig.target} | {measured} | "
                           f"{verdict(fig) or 'n/a'} |")
    out.append("")
    for section in sections:
        out += [f"## {section.key} {section.title}", ""]
        if section.unavailable:
            out += [f"**Not available:** {section.unavailable}", ""]
        if section.figures:
            out += ["| figure | median | range | ratio | target | holds |",
                    "|---|---|---|---|---|---|"]
            for fig in section.figures:
                value = fmt(fig.value, fig.unit) if fig.value is not None else \
                    f"not available: {fig.note}"
                out.append(f"| {fig.name} | {value} | {spread(fig)} | {ratio_text(fig)} | "
                           f"{fig.target} | {verdict(fig)} |")
            out.append("")
        out += [f"- {note}" for note in section.notes]
        if section.notes:
            out.append("")
    if profile:
        out += ["## Profiles: the missed targets, worst first, and the training loop", "",
                profile, ""]
    return "\n".join(out)


def start_load() -> str:
    return load_average()
