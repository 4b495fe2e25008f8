"""`make gpu-check`'s results: one `Row` per check, the Markdown table and results file,
and the machine they were measured on."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gpu_runs import PYTHON, quiet


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


def machine(cpu: bool) -> dict[str, str]:
    """GPUs (asked in a child process: this one keeps no CUDA context), versions, driver."""
    probe = "\n".join([
        "import json, torch, pytorch_lightning as pl",
        "n = torch.cuda.device_count()",
        "facts = {'torch': torch.__version__, 'cuda': torch.version.cuda,",
        "         'cudnn': torch.backends.cudnn.version(), 'lightning': pl.__version__}",
        "try:",
        "    facts['gpus'] = [torch.cuda.get_device_name(i) for i in range(n)]",
        "    v = torch.cuda.nccl.version() if n else None",
        "    facts['nccl'] = '.'.join(map(str, v)) if isinstance(v, tuple) else v",
        "except Exception as exc:",
        "    facts['error'] = repr(exc)",
        "print(json.dumps(facts))"])
    facts = read_json_text(quiet([PYTHON, "-c", probe], timeout=120))
    gpus = facts.get("gpus") or []
    names = sorted(set(gpus))
    info = {"mode": "CPU rehearsal (--cpu): processes instead of GPUs" if cpu else "GPU",
            "GPUs": f"{len(gpus)} x {', '.join(names)}" if gpus else
            f"none{' (' + facts['error'] + ')' if facts.get('error') else ''}",
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
