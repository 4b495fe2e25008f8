"""A local sweep of many tiny jobs: does it finish without leaking processes or files?

    .venv/bin/python bench/local_scale.py --jobs 1000 --max-parallel 4

Runs a plain Hydra app whose task returns at once on the local executor
(`hydra/launcher=local`), samples the `launch` process every 0.2 s (open file
descriptors, child processes, zombies, resident memory) and prints the figures
as one JSON line. Not part of `make bench`: 1,000 jobs take about 20 minutes
on 2 cores, each job being two fresh Python processes (submitit's controller
and the task). tests/test_local_scale.py checks the same on 30 jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

APP = '''
import hydra

@hydra.main(version_base=None, config_path=None)
def main(cfg):
    return 0.0

main()
'''


def sample(pid: int) -> tuple[int, int, int, int]:
    """Open fds, children, zombie children and RSS (KiB) of process `pid`."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    kids = subprocess.run(["ps", "--ppid", str(pid), "-o", "stat="], capture_output=True,
                          text=True).stdout.split()
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text()
               .splitlines() if line.startswith("VmRSS:"))
    return fds, len(kids), sum(k.startswith("Z") for k in kids), rss


def leftovers(folder: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-fa", str(folder)], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--max-parallel", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="launcher-local-scale-"))
    (folder / "app.py").write_text(APP)
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(folder / "app.py"), "-m", f"hydra.sweep.dir={folder / 'sweep'}",
         "hydra/launcher=local", f"hydra.launcher.max_parallel={args.max_parallel}",
         f"+x=range({args.jobs})"], cwd=folder, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "LAUNCHER_STATE_DIR": str(folder)})
    samples: list[tuple[int, int, int, int]] = []

    def watch() -> None:
        while process.poll() is None:
            with contextlib.suppress(OSError, StopIteration):  # it ended meanwhile
                samples.append(sample(process.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    _, err = process.communicate()
    watcher.join()
    wall = time.monotonic() - start
    records = json.loads((folder / "sweep" / "jobs.json").read_text())["jobs"]
    half = len(samples) // 2
    print(json.dumps({
        "jobs": args.jobs, "max_parallel": args.max_parallel, "exit": process.returncode,
        "wall_s": round(wall, 1), "completed": sum(r["state"] == "COMPLETED" for r in records),
        "fds_first_half_max": max(s[0] for s in samples[:half]),
        "fds_second_half_max": max(s[0] for s in samples[half:]),
        "children_max": max(s[1] for s in samples), "zombies_max": max(s[2] for s in samples),
        "rss_kib_first_half_max": max(s[3] for s in samples[:half]),
        "rss_kib_second_half_max": max(s[3] for s in samples[half:]),
        "leftover_processes": len(leftovers(folder)), "stderr_tail": err[-300:]}))
    return 0 if process.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
