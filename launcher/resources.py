"""One resource spec, stated once, from which everything else is derived.

    resources:
      nodes: 1               # machines
      gpus_per_node: 0       # 0 trains on CPU
      processes_per_node:    # default: gpus_per_node, or 1 on CPU (more = CPU DDP)
      cpus_per_task: 2
      mem_gb: 8              # per node
      time_min:              # SLURM: 60 unless set; local: no limit unless set
      partition: / account: / qos: / constraint:   # default from the cluster profile

`scheduler_request` turns it into the executor's request (SLURM tasks per
node = processes per node, nodes, GPUs); `trainer_options` into the
Lightning Trainer's accelerator, devices and num_nodes. Nothing else in the
launcher computes these, and a trainer block that states them differently
is refused before anything is submitted.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from launcher.errors import ConfigError

# Values that end up on an `#SBATCH` line: a newline or a space there could
# smuggle in a second directive or a shell command.
SAFE_SLURM_VALUE = re.compile(r"^[A-Za-z0-9_.,:@%+=/-]+$")
SLURM_NAMES = ("partition", "account", "qos", "constraint")
SLURM_DEFAULT_TIME_MIN = 60
# The local executor always has a time limit; "none" is a year.
LOCAL_NO_LIMIT_MIN = 365 * 24 * 60


@dataclass(frozen=True)
class Resources:
    nodes: int = 1
    gpus_per_node: int = 0
    processes_per_node: int | None = None
    cpus_per_task: int = 1
    mem_gb: float | None = None
    time_min: int | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None

    def __post_init__(self) -> None:
        for name in ("nodes", "cpus_per_task"):
            _positive_int(self, name, minimum=1)
        if self.time_min is not None:
            _positive_int(self, "time_min", minimum=1)
        _positive_int(self, "gpus_per_node", minimum=0)
        if self.processes_per_node is not None:
            _positive_int(self, "processes_per_node", minimum=1)
            if self.gpus_per_node and self.processes_per_node != self.gpus_per_node:
                raise ConfigError(
                    f"processes_per_node={self.processes_per_node} but gpus_per_node="
                    f"{self.gpus_per_node}: each process drives one GPU",
                    key="resources.processes_per_node",
                    hint="leave processes_per_node unset when using GPUs")
        if self.mem_gb is not None and not (
                isinstance(self.mem_gb, int | float) and self.mem_gb > 0):
            raise ConfigError(f"mem_gb must be a positive number, not {self.mem_gb!r}",
                              key="resources.mem_gb")
        for name in SLURM_NAMES:
            _safe_slurm_value(getattr(self, name), f"resources.{name}")

    @classmethod
    def from_config(cls, block: Mapping | None) -> Resources:
        if block is not None and not isinstance(block, Mapping):
            raise ConfigError(f"resources must be a block of settings, not {block!r}",
                              key="resources", hint="e.g. resources.nodes=2, or "
                              "resources: {nodes: 1, cpus_per_task: 2}")
        block = dict(block or {})
        known = [f.name for f in dataclasses.fields(cls)]
        for key in block:
            if key not in known:
                import difflib

                close = difflib.get_close_matches(key, known, 1)
                raise ConfigError(f"unknown resource '{key}' (known: {', '.join(known)})",
                                  key=f"resources.{key}",
                                  hint=f"did you mean '{close[0]}'?" if close else None)
        return cls(**block)

    @property
    def tasks_per_node(self) -> int:
        return self.processes_per_node or self.gpus_per_node or 1

    @property
    def world_size(self) -> int:
        return self.nodes * self.tasks_per_node

    def trainer_options(self) -> dict[str, Any]:
        """What the Lightning Trainer must be told for this request."""
        return {"accelerator": "gpu" if self.gpus_per_node else "cpu",
                "devices": self.tasks_per_node, "num_nodes": self.nodes}

    def scheduler_request(self, backend: str,
                          cluster: ClusterProfile | None = None) -> dict[str, Any]:
        """submitit executor parameters for `backend` ('slurm' or 'local')."""
        if backend == "local":
            # A workstation has no time limit; a local job gets one only when asked.
            request: dict[str, Any] = {"tasks_per_node": self.tasks_per_node,
                                       "timeout_min": self.time_min or LOCAL_NO_LIMIT_MIN}
            if self.gpus_per_node:
                request["gpus_per_node"] = self.gpus_per_node
            return request
        request = {"nodes": self.nodes, "ntasks_per_node": self.tasks_per_node,
                   "cpus_per_task": self.cpus_per_task,
                   "time": self.time_min or SLURM_DEFAULT_TIME_MIN}
        if self.gpus_per_node:
            request["gpus_per_node"] = self.gpus_per_node
        if self.mem_gb is not None:
            request["mem"] = f"{int(self.mem_gb * 1024)}M"
        for name in SLURM_NAMES:
            value = getattr(self, name) or getattr(cluster, name, None)
            if value:
                request[name] = value
        return request


def reconcile_trainer(trainer: Mapping, resources: Resources) -> dict[str, Any]:
    """The trainer block with device counts from the resources; refuse contradictions."""
    options = dict(trainer)
    for key, derived in resources.trainer_options().items():
        stated = options.get(key)
        same_accelerator = stated == "auto" or (stated, derived) == ("cuda", "gpu")
        if stated is None or stated == derived or (key == "accelerator" and same_accelerator):
            options[key] = derived
            continue
        hint = {"devices": f"set resources.{'gpus' if resources.gpus_per_node else 'processes'}"
                           f"_per_node={stated}",
                "num_nodes": f"set resources.nodes={stated}",
                "accelerator": "set resources.gpus_per_node (0 means cpu)"}[key]
        raise ConfigError(
            f"trainer.{key}={stated!r} contradicts the resources, which give {derived!r}",
            key=f"trainer.{key}", hint=f"state it once, in resources: {hint}, and remove "
                                       f"trainer.{key} (on the command line: ~trainer.{key})")
    if resources.world_size > 1 and options.get("strategy", "auto") == "auto":
        options["strategy"] = "ddp"
    return options


def with_device_counts(config: dict, num_nodes: Any, num_device: Any) -> dict:
    """A plain config with ESPnet3's top-level `num_nodes` and `num_device` folded into
    `resources` (nodes; GPUs per node when the resources or `trainer.accelerator` ask
    for GPUs, else processes per node). Said both ways and differently is refused."""
    if num_nodes is None and num_device is None:
        return config
    resources = config.get("resources")
    resources = dict(resources) if isinstance(resources, Mapping) else {}
    trainer = config.get("trainer") if isinstance(config.get("trainer"), Mapping) else {}
    if num_nodes is not None:
        _agree(resources, "nodes", num_nodes, "num_nodes")
    if num_device is not None:
        gpus = resources.get("gpus_per_node") or trainer.get("accelerator") in ("gpu", "cuda")
        _agree(resources, "gpus_per_node" if gpus else "processes_per_node", num_device,
               "num_device")
    return {**config, "resources": resources}


def _agree(resources: dict, name: str, value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be an integer >= 1, not {value!r}", key=key)
    stated = resources.get(name)
    if stated is not None and stated != value:
        raise ConfigError(f"{key}={value} contradicts resources.{name}={stated}", key=key,
                          hint=f"state it once: remove {key}, or make it equal")
    resources[name] = value


# sbatch options the resources set: a profile's `sbatch:` would override them in the
# script, and the ranks the Trainer is told of would not be those SLURM starts.
OWNED_BY_RESOURCES = {"nodes": "nodes", "ntasks": "processes_per_node",
                      "ntasks-per-node": "processes_per_node", "gpus": "gpus_per_node",
                      "gpus-per-node": "gpus_per_node", "gpus-per-task": "gpus_per_node",
                      "cpus-per-task": "cpus_per_task", "mem": "mem_gb", "time": "time_min"}


def _not_owned_by_resources(option: str, value: str) -> None:
    name = option.replace("_", "-")
    if name in ("array", "dependency"):
        raise ConfigError(f"sbatch option '{option}' is set by the SLURM executor: a sweep's "
                          "jobs are array tasks, and a sweep past the cluster's MaxArraySize "
                          "is several arrays, each waiting for the one before",
                          key=f"cluster.sbatch.{option}",
                          hint="cap the jobs running at once with hydra.launcher.max_parallel")
    owner = OWNED_BY_RESOURCES.get(name, "gpus_per_node" if name == "gres" and "gpu" in value
                                   else None)
    if owner is not None:
        raise ConfigError(f"sbatch option '{option}' is set by the resources, from which "
                          "the Trainer's device counts come too", key=f"cluster.sbatch.{option}",
                          hint=f"set resources.{owner} instead")


def _positive_int(resources: Resources, name: str, minimum: int) -> None:
    value = getattr(resources, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, not {value!r}",
                          key=f"resources.{name}")


def _safe_slurm_value(value: Any, key: str) -> None:
    if value is not None and not SAFE_SLURM_VALUE.match(str(value)):
        raise ConfigError(f"{value!r} is not a valid SLURM name", key=key,
                          hint="use letters, digits and _.,:@%+=/- only")


@dataclass(frozen=True)
class ClusterProfile:
    """A cluster's fixed settings (conf/cluster/<name>.yaml), selected with cluster=<name>."""

    name: str = "none"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: list[str] = field(default_factory=list)
    sbatch: dict[str, Any] = field(default_factory=dict)
    callbacks: list[Any] = field(default_factory=list)
    signal_delay_s: int = 120

    @classmethod
    def from_config(cls, block: Mapping | None) -> ClusterProfile:
        if block is not None and not isinstance(block, Mapping):
            from launcher.conf import CONF_DIR

            shipped = sorted(p.stem for p in (CONF_DIR / "cluster")
                             .glob("*.yaml"))
            raise ConfigError(f"no cluster profile '{block}'", key="cluster",
                              hint=f"create conf/cluster/{block}.yaml in the recipe, or "
                                   f"choose one of the launcher's: {', '.join(shipped)}")
        block = dict(block or {})
        known = [f.name for f in dataclasses.fields(cls)]
        for key in block:
            if key not in known:
                raise ConfigError(f"unknown cluster setting '{key}' (known: "
                                  f"{', '.join(known)})", key=f"cluster.{key}")
        profile = cls(**block)
        for name in SLURM_NAMES:
            _safe_slurm_value(getattr(profile, name), f"cluster.{name}")
        for option, value in profile.sbatch.items():
            _safe_slurm_value(option, f"cluster.sbatch.{option}")
            _safe_slurm_value(value, f"cluster.sbatch.{option}")
            _not_owned_by_resources(str(option), str(value))
        return profile

    def slurm_extras(self) -> dict[str, Any]:
        return {"setup": list(self.setup), "additional_parameters": dict(self.sbatch),
                "signal_delay_s": self.signal_delay_s}
