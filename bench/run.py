"""Run the benchmarks and write bench/RESULTS.md (`make bench`).

    python bench/run.py                      # full: about 10 minutes, writes bench/RESULTS.md
    python bench/run.py --quick              # every benchmark, briefly: bench/out/RESULTS.md
    python bench/run.py --only B1,B3         # some of them
    python bench/run.py --quick --only B7    # B7 is left out of --quick unless named

Benchmarks are not tests: nothing here fails on a missed target. The run
fails only when a benchmark cannot be measured at all; a section that needs
what is missing (the SLURM cluster, `launch status`) says "not available"
and why. SLURM jobs submitted here are held or cancelled before the run ends.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import b1_overhead
import b2_startup
import b3_sweep
import b4_status
import b5_resume
import b6_ddp
import b7_search
import b8_scale
import profile_worst
import report
from common import BENCH, ROOT, Context, Section, load_average

SECTIONS: dict[str, Callable[[Context], Section]] = {
    "B1": b1_overhead.run_section,
    "B2": b2_startup.run_section,
    "B3": b3_sweep.run_section,
    "B4": b4_status.run_section,
    "B5": b5_resume.run_section,
    "B6": b6_ddp.run_section,
    "B7": b7_search.run_section,
    "B8": b8_scale.run_section,
}
TITLES = {"B1": "Training-loop overhead", "B2": "Time to first training step and start-up",
          "B3": "Sweep submission to SLURM", "B4": "`launch status` on a sweep",
          "B5": "Resume cost", "B6": "DDP on CPU",
          "B7": "Asynchronous search vs batched Optuna", "B8": "Sweeps at cluster scale"}
# Left out of a --quick run unless named in --only: B7 waits for real searches on SLURM
# (minutes even when short), B8 plans and queues thousands of jobs; both are beyond the
# quick run's budget (tests/test_bench.py).
NOT_QUICK = ("B7", "B8")


def slurm_up() -> bool:
    """The local cluster answers (slurm/status), with SLURM_CONF set (slurm/env)."""
    status = ROOT / "slurm" / "status"
    return status.exists() and subprocess.run(
        ["bash", str(status)], capture_output=True).returncode == 0


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one repetition, short runs, 10-job sweeps (under a minute)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the Markdown report (default bench/RESULTS.md, "
                             "or bench/out/RESULTS.md with --quick: quick figures never "
                             "replace the real ones)")
    parser.add_argument("--only", default="", help="comma-separated sections, e.g. B1,B3")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3; 1 quick)")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip profiling the worst ratio (always skipped with --quick)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = BENCH / "out" / "RESULTS.md" if args.quick else BENCH / "RESULTS.md"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    chosen = [k.strip().upper() for k in args.only.split(",") if k.strip()] or \
        [k for k in SECTIONS if not (args.quick and k in NOT_QUICK)]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        print(f"bench: unknown section(s) {', '.join(unknown)}; choose from "
              f"{', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="launcher-bench-"))
    ctx = Context(quick=args.quick, work=work, slurm=slurm_up(),
                  reps=args.reps or (1 if args.quick else 3),
                  log=lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True))
    if not ctx.slurm:
        ctx.log("the local SLURM cluster does not answer (make slurm-up; source slurm/env): "
                "B3, B4, B7 and the requeue part of B5 will say 'not available'")
    started, load_start = time.monotonic(), load_average()
    sections = []
    try:
        for key in chosen:
            ctx.log(f"{key} {TITLES[key]}")
            try:
                sections.append(SECTIONS[key](ctx))
            except Exception as exc:  # report what failed, measure the rest
                traceback.print_exc()
                sections.append(Section(key, TITLES[key],
                                        unavailable=f"failed: {type(exc).__name__}: {exc}"))
        profile = "" if args.no_profile or args.quick else \
            profile_worst.profile_worst(ctx, sections)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(report.table(sections))
    text = report.markdown(sections, report.machine(), quick=args.quick,
                           load=(load_start, load_average()), profile=profile,
                           elapsed_s=elapsed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(
        {"quick": args.quick, "sections": [s.as_dict() for s in sections]}, indent=1) + "\n")
    print(f"wrote {args.out} ({elapsed:.0f} s)")
    failed = [s.key for s in sections if s.unavailable.startswith("failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
