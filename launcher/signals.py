"""One owner for signals: checkpoint at the next step, then requeue or stop.

SLURM warns a job `warning_s` seconds before its time limit (and a cluster
may do the same before preempting it) with `signal`. The handler installed
here only sets a flag. At the next step boundary every rank agrees on it,
the checkpoint is written (atomically) and then:

- warning signal, requeues left: rank 0 runs `scontrol requeue` for this job
  (this array task only); the next start resumes from the checkpoint;
- warning signal, budget used up: the run is marked out of retries and ends
  as failed, its run directory intact;
- SIGTERM (scancel, or a preemption without requeue), or SIGINT (Ctrl-C):
  the run stops, state `stopped`, exit status 143 (130 for Ctrl-C);
- a second Ctrl-C stops at once, without a checkpoint.

Outside `fit` (between stages, and between curriculum phases) the same
decision is taken at the next boundary.

    requeue:
      signal: USR2         # the warning signal
      warning_s: 120       # how long before the time limit SLURM sends it
      max_requeues: 3      # requeues allowed for one run
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError
from launcher.status_file import OUT_OF_RETRIES, REQUEUED, STOPPED, write_status

log = logging.getLogger("launcher.signals")
SIGNALS = ("USR1", "USR2", "URG", "XCPU")


@dataclass(frozen=True)
class RequeuePolicy:
    signal: str = "USR2"
    warning_s: int = 120
    max_requeues: int = 3

    @classmethod
    def from_config(cls, block: Mapping | None) -> RequeuePolicy:
        if block is not None and not isinstance(block, Mapping):
            raise ConfigError(f"requeue must be a block of settings, not {block!r}",
                              key="requeue", hint="e.g. requeue.max_requeues=5")
        block = dict(block or {})
        known = [f.name for f in dataclasses.fields(cls)]
        for key in block:
            if key not in known:
                raise ConfigError(f"unknown requeue setting '{key}' (known: {', '.join(known)})",
                                  key=f"requeue.{key}")
        policy = cls(**block)
        if policy.signal not in SIGNALS:
            raise ConfigError(f"signal '{policy.signal}' is not one of {', '.join(SIGNALS)}",
                              key="requeue.signal",
                              hint="SLURM's warning signal must be one a job can catch; "
                                   "USR2 is the usual choice")
        for name in ("warning_s", "max_requeues"):
            value = getattr(policy, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be an integer >= 0, not {value!r}",
                                  key=f"requeue.{name}")
        return policy

    def sbatch_signal(self) -> str:
        return f"{self.signal}@{self.warning_s}"


class JobEnds(BaseException):
    """Ends this attempt of a job, on purpose: requeued, stopped, out of retries.

    Not an error of the run, and not an `Exception`: raised from a signal
    handler it may surface anywhere, and no `except Exception` on the way may
    take it for a failure. `launch()` raises it to its caller; the CLI, and the
    job process, turn it into their exit status (`exit_code`)."""

    exit_code = 0

    def __init__(self, exit_code: int | None = None) -> None:
        super().__init__()
        if exit_code is not None:
            self.exit_code = exit_code


class Requeued(JobEnds):
    exit_code = 0


class Stopped(JobEnds):
    exit_code = 143  # 130 after Ctrl-C


class StoppedAtOnce(JobEnds):
    """A second Ctrl-C (or a stop the launcher could not act on at a step boundary):
    leave now, from wherever the program is, without a checkpoint."""

    exit_code = 130


class OutOfRetries(JobEnds):
    exit_code = 3


class SignalFlag:
    """Set by the signal handler, read at step boundaries. Handlers do nothing else."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.policy = RequeuePolicy()

    def install(self, policy: RequeuePolicy) -> None:
        """At the start of a run: take over the warning signal and SIGTERM for this
        process (from submitit too), with no signal received yet."""
        self.policy, self.received = policy, None
        self.retake()

    def forget(self) -> None:
        """A job has ended: a signal it received does not stop the next job run in this
        process (`launch()` called again from Python, or a test)."""
        self.received = None

    def retake(self) -> None:
        """Point the signals back at this flag, after a library installed its own."""
        for signum in (getattr(signal, f"SIG{self.policy.signal}"), signal.SIGTERM,
                       signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.received is not None:
            raise StoppedAtOnce()
        if self.received != signal.SIGINT:  # Ctrl-C decides the exit status once pressed
            self.received = signum

    @property
    def stops(self) -> bool:
        """Whether the received signal means stop rather than requeue."""
        return (self.received in (signal.SIGTERM, signal.SIGINT)
                or os.environ.get("SUBMITIT_EXECUTOR") != "slurm")

    @property
    def exit_code(self) -> int:
        return 130 if self.received == signal.SIGINT else 143

    @property
    def cause(self) -> str:
        return "Ctrl-C" if self.received == signal.SIGINT else signal.Signals(
            self.received or signal.SIGTERM).name


FLAG = SignalFlag()


def restart_count() -> int:
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)


def requeue_this_job() -> str:
    """`scontrol requeue` for this job, or only this task of a job array."""
    import submitit

    job_id = submitit.JobEnvironment().job_id
    # SLURM answers a requeue by sending SIGTERM to the job, scontrol included; the
    # child ignores it so that its exit status says whether the requeue was taken.
    result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN))
    if result.returncode not in (0, -signal.SIGTERM):
        raise RuntimeError(f"scontrol requeue {job_id} failed: {result.stderr.strip()}")
    return job_id


def stop_between_stages(run_dir: Path, lead: bool, where: str) -> None:
    """Act on a signal received outside `fit`, at a boundary between stages or phases.

    Everything before the boundary is saved; the next launch redoes only the
    stages after it (a finished training stage resumes from its checkpoint).
    On SLURM the warning signal requeues the job as it would during training."""
    if FLAG.received is None:
        return
    policy = FLAG.policy
    if FLAG.stops:
        if lead:
            log.warning("stopped %s by %s; launch the same command again to continue",
                        where, FLAG.cause)
            write_status(run_dir, STOPPED)
        raise Stopped(FLAG.exit_code)
    used = restart_count()
    if used >= policy.max_requeues:
        if lead:
            write_status(run_dir, OUT_OF_RETRIES, requeues=used)
        raise OutOfRetries()
    if lead:
        write_status(run_dir, REQUEUED, requeues=used + 1)
        job_id = requeue_this_job()
        log.info("requeued job %s %s (requeue %d of %d)", job_id, where, used + 1,
                 policy.max_requeues)
    raise Requeued()


def run_to_the_limit() -> None:
    """A plain task that cannot resume is not requeued on SLURM's time-limit warning (it
    would start over from scratch): it runs on until the limit, and the log says so.
    A recipe's jobs resume, and handle the signal with `FLAG`.

    SIGTERM (`launch cancel`, Ctrl-C to a local `launch`, preemption) ends it: it has
    nothing to save, and submitit's own handler would let it run on to its end."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def note(signum: int, frame: Any) -> None:
        log.warning(
            "the time limit is near; this task is not requeued, as it cannot resume "
            "(hydra.launcher.requeue=true if it resumes from its own checkpoint)")

    signal.signal(getattr(signal, f"SIG{RequeuePolicy.signal}"), note)
