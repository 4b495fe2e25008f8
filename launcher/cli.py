"""`launch`: run a recipe locally or on SLURM, one run or a sweep.

Kept free of heavy imports: `launch --help` must answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

USAGE = """\
launch RECIPE [OVERRIDES ...] [-m] [--config-name NAME] [--dry-run] [--wait]
launch status [SWEEP|RUN] [--watch SECONDS] [--all]
launch logs RUN [-f] [--err]
launch cancel SWEEP|RUN
launch retry SWEEP
launch report [SWEEP]
launch show RUN
launch diff RUN_A RUN_B

Run the recipe in folder RECIPE (e.g. egs3/tones/asr1) with its config
RECIPE/conf/config.yaml and Hydra-style OVERRIDES. A Lightning app laid out as
lightning-hydra-template (RECIPE/configs/train.yaml, model: a LightningModule,
data: a LightningDataModule) runs as it is: launch RECIPE --config-name train.

examples:
  launch egs3/tones/asr1                                  run all default stages
  launch egs3/tones/asr1 stages=[collect_stats,train]     choose stages
  launch egs3/tones/asr1 trainer.max_epochs=3 optim.lr=1e-3
  launch egs3/tones/asr1 -m optim.lr=1e-3,3e-4            a sweep: one run per value
  launch egs3/tones/asr1 search.n_trials=20 search.slots=4 'optim.lr=tag(log,interval(1e-4,1e-1))'
                                                          an Optuna search (docs/sweeps.md)
  launch egs3/tones/asr1 hydra/launcher=slurm cluster=local resources.nodes=2
  launch status                                           the latest sweep, one table

Executors: hydra/launcher=local (default; jobs are subprocesses of launch) or
hydra/launcher=slurm (a sweep is one job array; launch returns once queued,
--wait blocks). Resources are stated once: resources.nodes, gpus_per_node,
processes_per_node, cpus_per_task, mem_gb, time_min, partition, account.
SWEEP is a sweep folder (<exp_root>/sweeps/<id>) or its id; RUN a run folder.

Each run gets its own folder, <exp_root>/<name from the overrides> (exp_root
defaults to RECIPE/exp): the resolved config.yaml, run.log (with the
traceback if it failed), metrics.csv, checkpoints/ (last.ckpt and the best
ones), stats/ and evaluate.json. Running the same command again continues
that run from its last checkpoint. Ctrl-C (or SIGTERM) saves a checkpoint at
the next step and stops (exit 130; 143); a second Ctrl-C stops at once. A run
already running elsewhere is refused (exit 2), or waited for with --wait.
Locally there is no time limit unless resources.time_min is set.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="launch", usage=USAGE, add_help=True,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help="recipe folder, e.g. egs3/tones/asr1")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, key=value")
    parser.add_argument("-m", "--multirun", action="store_true",
                        help="sweep: one run per combination of comma-separated values")
    parser.add_argument("-cn", "--config-name", default=None,
                        help="config file in RECIPE/conf or RECIPE/configs "
                             "(default: config)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print each job's config, classes and the batch script; "
                             "submit nothing")
    wait = parser.add_mutually_exclusive_group()
    wait.add_argument("--wait", dest="wait", action="store_true", default=None,
                      help="on SLURM, block until every job ended; exit 1 if one failed. "
                           "Also: wait for a run that another launch is running")
    wait.add_argument("--no-wait", dest="wait", action="store_false",
                      help="on SLURM, return once the jobs are queued (the default)")
    return parser


COMMANDS = ("status", "logs", "cancel", "retry", "report", "show", "diff")


def build_command_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="launch")
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser(
        "status", prog="launch status", help="one table: state, progress, metric, log",
        description="One table for a sweep (default: the latest) or a run: state, epoch and "
                    "step, the tracked metric, elapsed time, log path. One squeue and one "
                    "sacct call per refresh.")
    status.add_argument("target", nargs="?", help="sweep folder or id, or run folder")
    status.add_argument("--watch", type=float, nargs="?", const=10.0, default=None,
                        metavar="SECONDS", help="refresh until every job has ended")
    status.add_argument("--all", action="store_true", dest="show_all",
                        help="every row; a sweep of more than 40 jobs is otherwise "
                             "summarised (the best, those that need a look, some running)")
    logs = commands.add_parser("logs", prog="launch logs", help="print a run's log",
                               description="Print a run's run.log (or the scheduler's "
                                           "stderr with --err); -f follows it.")
    logs.add_argument("target", help="run folder")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--err", action="store_true", help="the scheduler's stderr instead")
    for name, text in (("cancel", "cancel the jobs that have not ended"),
                       ("retry", "resubmit failed, cancelled or timed-out runs only"),
                       ("report", "CSV and figures for a sweep")):
        sub = commands.add_parser(name, prog=f"launch {name}", help=text, description=text)
        sub.add_argument("target", nargs="?" if name == "report" else None)
    show = commands.add_parser(
        "show", prog="launch show", help="what produced a run: command, git, versions, jobs",
        description="Print a run's record.json: the command, the git commit (and git.diff of "
                    "uncommitted changes), the launcher, Python and library versions, the "
                    "code digest, and one line per attempt (host, SLURM job, restart, GPUs).")
    show.add_argument("target", metavar="RUN", help="run folder")
    diff = commands.add_parser(
        "diff", prog="launch diff", help="config keys and record fields two runs differ in",
        description="Print the config keys (config.yaml) two runs differ in, then the record "
                    "fields: command, git commit and changes, versions, code digest and files.")
    diff.add_argument("run_a", metavar="RUN_A", help="run folder")
    diff.add_argument("run_b", metavar="RUN_B", help="run folder")
    return parser


def run_command(argv: Sequence[str]) -> int:
    """The follow-up commands; they never import torch."""
    args = build_command_parser().parse_args(argv)
    if args.command == "status":
        from launcher.followups.status import show

        return show(args.target, args.watch, args.show_all)
    if args.command == "report":
        from launcher.followups.report import write

        write(args.target)
        return 0
    if args.command == "logs":
        from launcher.followups.logs import logs

        return logs(args.target, args.follow, args.err)
    if args.command == "cancel":
        from launcher.followups.cancel import cancel

        return cancel(args.target)
    if args.command == "show":
        from launcher.followups.show import show as show_record

        return show_record(args.target)
    if args.command == "diff":
        from launcher.followups.diff import diff

        return diff(args.run_a, args.run_b)
    from launcher.followups.retry import retry
    from launcher.launch import launch

    return retry(args.target, launch)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from launcher.errors import LauncherError

    if argv and argv[0] in COMMANDS:
        try:
            return run_command(argv)
        except LauncherError as exc:
            print(f"launch: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
    if not argv:
        build_parser().print_usage(sys.stderr)
        print("launch: error: give a recipe folder, e.g. launch egs3/tones/asr1 "
              "(launch --help says more)", file=sys.stderr)
        return 2
    args = build_parser().parse_intermixed_args(argv)
    from launcher.executors.base import SweepFailed, SweepStopped
    from launcher.signals import JobEnds

    try:
        from launcher.launch import launch

        result = launch(args.recipe, args.overrides, config_name=args.config_name,
                        multirun=args.multirun, wait=args.wait, dry_run=args.dry_run)
    except SweepFailed as exc:
        print_jobs(exc.jobs)
        print_search(exc.jobs)
        stopped = isinstance(exc, SweepStopped)
        if not stopped:
            print_causes(exc)
        print(f"launch: {'' if stopped else 'error: '}{exc}", file=sys.stderr)
        return exc.exit_code
    except LauncherError as exc:
        print(f"launch: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except JobEnds as ended:
        print(_ended_line(ended), file=sys.stderr)
        return ended.exit_code
    except KeyboardInterrupt:
        print("launch: interrupted; nothing was started", file=sys.stderr)
        return 130
    if isinstance(result, str):  # a dry run, or an optimising sweeper's summary
        print(result)
        return 0
    print_jobs(result)
    print_search(result)
    return 0


def print_search(jobs: Sequence) -> None:
    """A search's trials and the best so far, after its slots."""
    from launcher.followups.trials import search_summary
    from launcher.search.spec import SLOTS_DIR

    slot_dir = Path(getattr(jobs[0], "run_dir", "")) if jobs else None
    if slot_dir is not None and slot_dir.parent.name == SLOTS_DIR:  # <sweep>/slots/<k>
        text = search_summary(slot_dir.parents[1])
        if text:
            print(text)


def _ended_line(ended: BaseException) -> str:
    from launcher.signals import StoppedAtOnce

    if isinstance(ended, StoppedAtOnce):
        return ("launch: stopped at once, without a checkpoint; run the same command again to "
                "continue from the last one")
    return ("launch: the run stopped after saving a checkpoint; run the same command again "
            "to continue")


def print_jobs(jobs: Sequence) -> None:
    """The closing summary: one line per job, then where to look. A run folder is
    named only once it exists; a failed job gets its exception line and its logs."""
    from launcher.executors.outcome import where

    if len(jobs) == 1 and not jobs[0].job_id:
        if jobs[0].note:
            print(f"{jobs[0].note}")
        print(where(jobs[0]))
        return
    from launcher.executors.registry import shown

    width = max(len(j.job_id) for j in jobs)
    pad = " " * width
    print(f"{len(jobs)} job(s):")
    for job in jobs:
        print(f"  {job.job_id:<{width}}  {job.state:<9}  {shown(job.overrides)}")
        print(f"  {pad}  {where(job)}")
        if job.note:
            print(f"  {pad}  {job.note}")
        for line in _failure_lines(job):
            print(f"  {pad}  {line}")
    if any(j.state == "QUEUED" for j in jobs):
        sweep = Path(jobs[0].stdout).parents[2] if jobs[0].stdout else None
        print(f"sweep: {sweep}")
        print(f"follow with: launch status {sweep} --watch   |   launch logs <run directory> -f"
              f"\n             launch cancel {sweep}   |   launch retry {sweep}   |   "
              f"launch report {sweep}")


def _failure_lines(job: Any) -> list[str]:
    """A failed job's exception line, then the logs that exist (run.log holds the
    traceback; the scheduler's stderr what happened before the run began)."""
    from launcher.executors.outcome import cause, has_folder
    from launcher.layout import LOG_FILE

    if not job.failed:
        return []
    if job.state == "STOPPED":
        return [job.error] if job.error else []
    logs = []
    run_log = Path(job.run_dir) / LOG_FILE
    if has_folder(job) and run_log.is_file():
        logs.append(f"log: {run_log}")
    if job.stderr and Path(job.stderr).is_file():
        logs.append(f"scheduler log: {job.stderr}")
    return [f"error: {cause(job)}", "  ".join(logs) or "it wrote no log"]


def print_causes(exc: Any) -> None:
    """On stderr, beside the error line, the cause and log of each failed job that
    the error line does not name itself."""
    from launcher.executors.outcome import cause, failure_line

    said = str(exc)
    for job in exc.jobs:
        if job.failed and not (f"job {job.job_id} " in said and cause(job) in said):
            print(f"launch: {failure_line(job)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
