"""A sweep as SLURM job arrays that the cluster accepts.

SLURM refuses an array whose highest index is `MaxArraySize` or more (1001 by
default), so a sweep of 1,100 jobs cannot be one `--array=0-1099`. It is
submitted as several arrays of at most `MaxArraySize` jobs, each indexed from
0; the sweep's records map each array task back to its job.

The `%N` cap (`max_parallel`) must hold for the whole sweep, not per array.
Each array after the first waits for the one before it to end
(`--dependency=afterany:<its id>`, whatever became of its jobs), so at most N
of the sweep's jobs run at once. The price: while an array's last jobs run,
fewer than N do.

A user may also have only so many jobs queued (`MaxSubmitJobs` of their
association, `MaxSubmitJobsPerUser` of the QOS) where accounting enforces
limits, and the controller holds fewer than `MaxJobCount` jobs of all users,
every array task counted. A sweep that does not fit is refused before anything
is written, saying how many jobs fit: sbatch would otherwise refuse it midway,
or (MaxJobCount) retry for minutes before it does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

# AccountingStorageEnforce words under which association and QOS limits hold.
ENFORCING = ("limits", "safe")


@dataclass(frozen=True)
class ClusterLimits:
    """What the cluster lets one launch queue; None where there is no limit or it is
    unknown (no SLURM client here, no answer)."""

    max_array_size: int | None = None  # MaxArraySize: task indices 0..max_array_size-1
    max_job_count: int | None = None  # MaxJobCount: jobs the controller holds, all users
    cluster_jobs: int = 0  # jobs it holds now (sdiag: pending and running)
    submit_limit: int | None = None  # jobs this user may have queued, all told
    limit_source: str = ""  # where submit_limit comes from, as sacctmgr names it
    queued: int = 0  # this user's jobs queued now, which count toward submit_limit

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ClusterLimits:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


@dataclass(frozen=True)
class Chunk:
    """One array of a sweep: `count` jobs from position `first` of the submission."""

    first: int
    count: int

    @property
    def last(self) -> int:
        return self.first + self.count - 1


def chunks(n_jobs: int, limits: ClusterLimits) -> list[Chunk]:
    """The arrays `n_jobs` jobs are submitted as: one, unless MaxArraySize says more."""
    size = limits.max_array_size or n_jobs or 1
    return [Chunk(first, min(size, n_jobs - first)) for first in range(0, n_jobs, size)]


def refusal(n_jobs: int, limits: ClusterLimits) -> str | None:
    """Why this many jobs cannot be queued within the limits, saying how many fit."""
    if limits.submit_limit is not None:
        fit = max(limits.submit_limit - limits.queued, 0)
        if n_jobs > fit:
            return (f"the sweep has {n_jobs} job(s) to queue but only {fit} more fit within "
                    f"your limits ({limits.limit_source}, {limits.queued} job(s) queued now): "
                    f"launch at most {fit} at once (a smaller grid), or wait for queued jobs "
                    f"to end; nothing was written")
    if limits.max_job_count is not None and n_jobs + limits.cluster_jobs >= \
            limits.max_job_count:
        fit = max(limits.max_job_count - 1 - limits.cluster_jobs, 0)
        return (f"the sweep has {n_jobs} job(s) to queue but the cluster holds fewer than "
                f"{limits.max_job_count} jobs in all (MaxJobCount), and holds "
                f"{limits.cluster_jobs} now: {fit} more fit; launch at most {fit} at once "
                f"(a smaller grid), or wait for queued jobs to end; nothing was written")
    return None


def read_limits(account: str | None = None, qos: str | None = None) -> ClusterLimits:
    """The cluster's limits, read once per launch: one `scontrol show config`, and where
    accounting enforces limits, `sacctmgr` for the user's association and QOS and one
    `squeue -u` for the jobs they have queued. Unknown (no limits) without a SLURM client."""
    config = _scontrol_config()
    if config is None:
        return ClusterLimits()
    base = ClusterLimits(_int(config.get("MaxArraySize")), _int(config.get("MaxJobCount")),
                         cluster_jobs=_cluster_jobs())
    enforced = config.get("AccountingStorageEnforce", "").lower()
    if not any(word in enforced for word in ENFORCING):
        return base
    limit, source = _submit_limit(_user(), config.get("ClusterName", ""), account, qos)
    if limit is None:
        return base
    return replace(base, submit_limit=limit, limit_source=source, queued=_queued(_user()))


def _run(argv: list[str]) -> str | None:
    """A SLURM command's output; None when it is missing or fails (sbatch answers then)."""
    if not shutil.which(argv[0]):
        return None
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return out.stdout if out.returncode == 0 else None


def _scontrol_config() -> dict[str, str] | None:
    text = _run(["scontrol", "show", "config"])
    if text is None:
        return None
    pairs = (line.split("=", 1) for line in text.splitlines() if " = " in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _submit_limit(user: str, cluster: str, account: str | None,
                  qos: str | None) -> tuple[int | None, str]:
    """The tightest of the association's MaxSubmitJobs and the QOS's
    MaxSubmitJobsPerUser, for the account and QOS the jobs will use."""
    rows = _sacctmgr(["show", "user", user, "withassoc", "where", f"cluster={cluster}",
                      "format=DefaultAccount,Account,MaxSubmit,DefaultQOS"])
    mine = [r for r in rows if len(r) == 4 and r[1] == (account or r[0])]
    found: list[tuple[int, str]] = []
    chosen_qos = qos
    if mine:
        _, used_account, max_submit, default_qos = mine[0]
        if _int(max_submit) is not None:
            found.append((int(max_submit), f"MaxSubmitJobs={max_submit} of your association "
                                           f"with account {used_account}"))
        chosen_qos = qos or default_qos or "normal"
    for name, per_user in _sacctmgr(["show", "qos", "where", f"name={chosen_qos or 'normal'}",
                                     "format=Name,MaxSubmitPU"]):
        if _int(per_user) is not None:
            found.append((int(per_user), f"MaxSubmitJobsPerUser={per_user} of QOS {name}"))
    return min(found) if found else (None, "")


def _sacctmgr(arguments: list[str]) -> list[list[str]]:
    text = _run(["sacctmgr", "-n", "-P", *arguments])
    return [line.split("|") for line in (text or "").splitlines() if line.strip()]


def _cluster_jobs() -> int:
    """The jobs the controller holds now, every user's, each array task counted: sdiag's
    counters (one call, no listing of a queue that may hold tens of thousands)."""
    text = _run(["sdiag"]) or ""
    found = re.findall(r"^Jobs (?:pending|running):\s+(\d+)", text, re.MULTILINE)
    return sum(int(n) for n in found)


def _queued(user: str) -> int:
    """The user's jobs the controller holds now, each array task counted, as the limits
    count them."""
    text = _run(["squeue", "-h", "-r", "-u", user, "-o", "%i"])
    return len((text or "").split())


def _user() -> str:
    import pwd

    return os.environ.get("USER") or pwd.getpwuid(os.getuid()).pw_name


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None
