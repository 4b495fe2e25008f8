"""The options our Hydra launchers take (`hydra.launcher.*`), and where the others went.

hydra-submitit-launcher users know many more (`timeout_min`, `partition`, ...):
each of those has its one place in the launcher's config (the resource spec,
a cluster profile, the requeue policy), and an error says which instead of
quietly ignoring the value. The same table judges `launch`'s command line
before anything is planned and a plain Hydra app's launcher config when
Hydra builds the launcher, before anything is submitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError

PREFIX = "hydra.launcher."
# plan_file is `launch`'s own: it names the plan of a launch's jobs.
OPTIONS = {"local": ("max_parallel", "plan_file"),
           "slurm": ("max_parallel", "wait", "requeue", "plan_file")}
ELSEWHERE = {
    "timeout_min": "resources.time_min", "nodes": "resources.nodes",
    "gpus_per_node": "resources.gpus_per_node", "tasks_per_node": "resources.processes_per_node",
    "cpus_per_task": "resources.cpus_per_task", "mem_gb": "resources.mem_gb",
    "partition": "resources.partition (or a cluster profile)",
    "account": "resources.account", "qos": "resources.qos",
    "constraint": "resources.constraint",
    "setup": "a cluster profile's setup lines (conf/cluster/<name>.yaml)",
    "additional_parameters": "a cluster profile's sbatch block",
    "signal_delay_s": "requeue.warning_s", "max_num_timeout": "requeue.max_requeues",
    "array_parallelism": "hydra.launcher.max_parallel",
    "submitit_folder": "nothing: submitit's files go to <sweep dir>/.submitit",
}
# Set by `launch` from the recipe's own `requeue:` block, which a recipe's jobs use.
RECIPE_HAS_IT = {"requeue": "requeue.max_requeues (0: never requeue)"}


def checked_options(backend: str, options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The options, each known to this executor and of the right type; else one line
    naming the option, where it was set and what to do instead."""
    known = OPTIONS[backend]
    for name, value in options.items():
        key = f"{PREFIX}{name}"
        if name not in known:
            moved = name in ELSEWHERE
            reason = ("is not an option of the launcher's executors" if moved
                      else f"is not an option of the {backend} executor")
            hint = (f"set {ELSEWHERE[name]} instead" if moved else
                    f"the {backend} executor's options are: "
                    f"{', '.join(k for k in known if k != 'plan_file')}")
            raise ConfigError(f"'{name}' {reason}", key=key, file=where, hint=hint)
        _check_value(name, value, key, where)
    return dict(options)


def _check_value(name: str, value: Any, key: str, where: str) -> None:
    if name == "max_parallel" and (isinstance(value, bool) or not isinstance(value, int)
                                   or value < 1):
        raise ConfigError(f"max_parallel must be an integer >= 1, not {value!r}", key=key,
                          file=where, hint="how many jobs run at once, e.g. "
                                           "hydra.launcher.max_parallel=4")
    if name == "wait" and not isinstance(value, bool):
        raise ConfigError(f"wait must be true or false, not {value!r}", key=key, file=where,
                          hint="or use launch --wait / --no-wait")
    if name == "requeue" and not isinstance(value, bool):
        raise ConfigError(f"requeue must be true or false, not {value!r}", key=key,
                          file=where, hint="true only if the task resumes from its own "
                                           "checkpoint when it starts again")


def launcher_conf_dir() -> Path:
    """The folder of the executors' shipped configs (`hydra/launcher/<name>.yaml`)."""
    from importlib.resources import files

    return Path(str(files("hydra_plugins.launcher_executors.conf"))) / "hydra" / "launcher"
