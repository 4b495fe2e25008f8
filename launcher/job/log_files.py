"""Each rank logs to a file of its own in the run folder: `run.log`, `run.rank<N>.log`.

Hydra configures the job's logging before the task function runs, from
`hydra.job_logging`; its file name asks this resolver which rank this
process is. The executor registers it before Hydra starts a job
(`launcher.executors.hydra_app`), in the submitting process and in each job.
"""

from __future__ import annotations

RESOLVER = "launcher.log_name"
FILENAME = "${hydra.runtime.output_dir}/${" + RESOLVER + ":}"


def register_log_name_resolver() -> None:
    from omegaconf import OmegaConf

    from launcher.ranks import log_name

    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, log_name)
