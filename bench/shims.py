"""Count and time scheduler calls: wrapper scripts placed first on PATH.

Each wrapper (`sbatch`, `squeue`, `sacct`, `scontrol`, `sinfo`) logs one line
per call (name, start and end wall time, exit status) and runs the real
binary with the same arguments, output and exit status. `sbatch`'s output is
also kept, so that every job submitted through the shims can be cancelled.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRAPPED = ("sbatch", "squeue", "sacct", "scontrol", "sinfo")
WRAPPER = """#!/bin/bash
start=$(date +%s.%N)
out=$(mktemp)
"{real}" "$@" >"$out"
rc=$?
cat "$out"
{keep}
rm -f "$out"
echo "{name} $start $(date +%s.%N) $rc" >>"{log}"
exit $rc
"""


@dataclass(frozen=True)
class Call:
    name: str
    start: float
    end: float
    rc: int


class SchedulerShims:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.log = folder / "calls.log"
        self.sbatch_out = folder / "sbatch.out"
        for name in WRAPPED:
            real = shutil.which(name)
            if real is None:
                continue
            keep = f'cat "$out" >>"{self.sbatch_out}"' if name == "sbatch" else ""
            path = self.bin / name
            path.write_text(WRAPPER.format(real=real, name=name, log=self.log, keep=keep))
            path.chmod(0o755)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """`base` with the wrappers first on PATH."""
        return {**base, "PATH": f"{self.bin}{os.pathsep}{base.get('PATH', '')}"}

    def reset(self) -> None:
        self.log.unlink(missing_ok=True)

    def calls(self, name: str | None = None) -> list[Call]:
        if not self.log.is_file():
            return []
        found = []
        for line in self.log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and (name is None or parts[0] == name):
                found.append(Call(parts[0], float(parts[1]), float(parts[2]), int(parts[3])))
        return found

    def submitted_ids(self) -> list[str]:
        """Every job id sbatch answered through these wrappers, ever."""
        if not self.sbatch_out.is_file():
            return []
        return re.findall(r"Submitted batch job (\d+)", self.sbatch_out.read_text())

    def cancel_all(self) -> None:
        """scancel every job submitted through the wrappers (ours only, never others')."""
        ids = self.submitted_ids()
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True)
