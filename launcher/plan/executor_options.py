"""The `hydra.launcher.*` options a user may set, judged before anything is submitted.

Our executors take two options of their own, `max_parallel` and (on SLURM)
`wait`. hydra-submitit-launcher users know many more (`timeout_min`,
`partition`, ...): each of those has its one place in the launcher's config,
and the error says which, instead of quietly ignoring the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from launcher.conf import CONF_DIR
from launcher.errors import ConfigError, clipped

PREFIX = "hydra.launcher."
OPTIONS = {"local": ("max_parallel",), "slurm": ("max_parallel", "wait")}
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
}
LAUNCHER_CONF = CONF_DIR / "hydra" / "launcher"


def launcher_options(overrides: Sequence[str], backend: str) -> dict[str, Any]:
    """The executor's options: its config file's defaults with the overrides applied."""
    from omegaconf import OmegaConf

    defaults = OmegaConf.to_container(OmegaConf.load(LAUNCHER_CONF / f"{backend}.yaml"))
    options = {k: v for k, v in defaults.items() if k != "_target_"}
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key.startswith(PREFIX):
            options.update(_checked(override, key.removeprefix(PREFIX), backend))
    return options


def _checked(override: str, name: str, backend: str) -> dict[str, Any]:
    where = f"command-line override '{clipped(override)}'"
    known = OPTIONS[backend]
    if name not in known:
        hint = (f"set {ELSEWHERE[name]} instead" if name in ELSEWHERE
                else f"the {backend} executor's options are: {', '.join(known)}")
        reason = ("is not an option of the launcher's executors" if name in ELSEWHERE
                  else f"is not an option of the {backend} executor")
        raise ConfigError(f"'{name}' {reason}", key=f"{PREFIX}{name}", file=where, hint=hint)
    value = _value(override)
    if name == "max_parallel" and (isinstance(value, bool) or not isinstance(value, int)
                                   or value < 1):
        raise ConfigError(f"max_parallel must be an integer >= 1, not {value!r}",
                          key=f"{PREFIX}{name}", file=where,
                          hint="how many jobs run at once, e.g. hydra.launcher.max_parallel=4")
    if name == "wait" and not isinstance(value, bool):
        raise ConfigError(f"wait must be true or false, not {value!r}", key=f"{PREFIX}{name}",
                          file=where, hint="or use launch --wait / --no-wait")
    return {name: value}


def _value(override: str) -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        (parsed,) = OverridesParser.create().parse_overrides([override])
    except HydraException as exc:
        raise ConfigError(str(exc).strip().splitlines()[0], file="command line",
                          hint="quote values with spaces or commas: key='a b'") from None
    return parsed.value()
