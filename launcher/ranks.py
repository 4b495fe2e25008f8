"""Which rank this process is, without importing torch or Lightning."""

from __future__ import annotations

import os


def under_submitit() -> bool:
    """True inside a job the launcher submitted (local or SLURM)."""
    return bool(os.environ.get("SUBMITIT_EXECUTOR"))


def process_rank() -> int:
    """This process's global rank in its job (0 outside a launcher job)."""
    if not under_submitit():
        return 0
    import submitit

    return submitit.JobEnvironment().global_rank


def log_name() -> str:
    """run.log for rank 0; run.rank<N>.log for the others, so logs never interleave."""
    rank = process_rank()
    from launcher.layout import log_file

    return log_file(rank)
