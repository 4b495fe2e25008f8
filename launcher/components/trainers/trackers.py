"""Experiment trackers that stay one tracker run across requeues and resumes.

`trainer.logger` may name `tensorboard`, `mlflow` or `wandb`, or give a `_target_`
block of Lightning's TensorBoardLogger, MLFlowLogger or WandbLogger. A requeued or
relaunched run (the same run folder) continues from its checkpoint, so its tracker
run must continue too. The ids are kept in `<run_dir>/trackers.json`, written by
rank 0 when a tracker run is first made, and handed to every later attempt:

    tensorboard  {"version": ...}       one fixed log dir: no version_N per attempt
    mlflow       {"run_id": ..., ...}   the run, reopened
    wandb        {"id": ...}            passed as id=, with resume="allow"
(a block's own `version` / `run_id` / `id` wins: only missing ones are filled in).

The step axis continues without duplicates. An attempt resumes at the global step S
of its checkpoint, so what the previous one logged at steps >= S (after its last
checkpoint, before it was killed) is logged again. TensorBoard hides the older events
(`purge_step=S`); MLflow's file store has them cut from its metric files before
training continues (another store: a warning that duplicates may show); W&B's
history is append-only (docs/trainer.md says what that means).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.errors import ConfigError

log = logging.getLogger(__name__)

# What each tracker needs importable (any one of them), and how to install it.
PACKAGES = {"tensorboard": (("tensorboard", "tensorboardX"), "pip install tensorboard"),
            "mlflow": (("mlflow",), "pip install mlflow-skinny"),
            "wandb": (("wandb",), "pip install wandb")}
CLASSES = {"TensorBoardLogger": "tensorboard", "MLFlowLogger": "mlflow",
           "WandbLogger": "wandb"}
LIGHTNING_LOGGERS = ("pytorch_lightning.loggers", "lightning.pytorch.loggers")


# ---- checked while planning (imports nothing) ---------------------------------------
def check_tracker(item: Any, key: str) -> None:
    """Refuse a tracker whose package is missing now, not once the job is queued and
    starts; `find_spec` answers without importing the (slow to import) package."""
    import importlib.util

    kind = item if isinstance(item, str) else target_kind(item)
    if kind not in PACKAGES:
        return
    modules, fix = PACKAGES[kind]
    if not any(importlib.util.find_spec(module) for module in modules):
        raise ConfigError(f"the {kind} logger needs the '{modules[0]}' package, which is "
                          "not installed", key=key, hint=f"{fix}, or choose another logger")


def target_kind(item: Any) -> str | None:
    """The tracker a `{_target_: ...}` block names, judged by its spelling alone."""
    target = item.get("_target_") if isinstance(item, Mapping) else None
    if not isinstance(target, str):
        return None
    module, _, name = target.rpartition(".")
    return CLASSES.get(name) if module.startswith(LIGHTNING_LOGGERS) else None


# ---- built in the job ----------------------------------------------------------------
class Trackers:
    """The tracker runs of one run folder: what trackers.json says, and the loggers
    that continue them."""

    def __init__(self, run_dir: str | Path) -> None:
        from launcher.ranks import process_rank

        self.run_dir = Path(run_dir).absolute()
        self.path = self.run_dir / layout.TRACKERS_FILE
        self.lead = process_rank() == 0  # only rank 0 makes tracker runs and writes
        self.known = read_trackers(self.path)
        self.ids = dict(self.known)
        self.counts: dict[str, int] = {}

    def build(self, item: Any) -> Any | None:
        """The logger for a tracker's name or for a block of one of the tracker classes
        (or a subclass); None for anything else."""
        if isinstance(item, str):
            if item not in PACKAGES:
                return None
            kind, options, make = item, self.defaults(item), maker(item)
        elif isinstance(item, Mapping) and isinstance(item.get("_target_"), str):
            kind = class_kind(item["_target_"])
            if kind is None:
                return None
            options = {k: v for k, v in item.items() if k != "_target_"}
            make = maker(kind, item["_target_"])
        else:
            return None
        n = self.counts[kind] = self.counts.get(kind, -1) + 1
        key = kind if n == 0 else f"{kind}[{n}]"
        return getattr(self, f"_{kind}")(key, options, make)

    def save(self) -> None:
        """Write trackers.json (rank 0) when a tracker run was made or replaced."""
        if self.lead and self.ids != self.known:
            from launcher.atomic import write_text

            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_text(self.path, json.dumps(self.ids, indent=2, sort_keys=True) + "\n")

    def defaults(self, kind: str) -> dict:
        """The shorthand's options: everything in the run folder, named after it."""
        experiment, name = run_names(self.run_dir)
        if kind == "tensorboard":  # version "": the log dir is <run>/tensorboard itself
            return {"save_dir": str(self.run_dir), "name": layout.TENSORBOARD_DIR,
                    "version": ""}
        if kind == "mlflow":
            uri = os.environ.get("MLFLOW_TRACKING_URI") or f"file:{self.run_dir / 'mlruns'}"
            return {"tracking_uri": uri, "experiment_name": experiment, "run_name": name}
        return {"save_dir": str(self.run_dir), "name": name}  # W&B reads WANDB_MODE itself

    @functools.cached_property
    def resume_step(self) -> int:
        """The global step the run resumes at: that of the checkpoint `fit` will pick
        (0 without one). Only the checkpoint's structure is read, its tensors mapped."""
        from launcher.components.callbacks import checkpoint_folders, checkpoints

        path = checkpoints.resume_checkpoint(self.run_dir / layout.CHECKPOINT_DIR)
        return int(checkpoint_folders.training_state(path)["global_step"]) if path else 0

    def _tensorboard(self, key: str, options: dict, make: Callable) -> Any:
        record = self.known.get(key, {})
        if "version" not in options and "version" in record:
            options["version"] = record["version"]
        logger = make(options)
        if self.lead and "purge_step" not in options and (
                key in self.known or any(Path(logger.log_dir).glob("events.out.tfevents.*"))):
            # SummaryWriter(purge_step=S): TensorBoard drops older events at steps >= S.
            # The placeholder hp_metric (-1 at step 0) is there from the first attempt.
            logger = make({"default_hp_metric": False, **options, "version": logger.version,
                           "purge_step": self.resume_step})
        self.ids[key] = {"version": logger.version, "log_dir": str(logger.log_dir)}
        return logger

    def _mlflow(self, key: str, options: dict, make: Callable) -> Any:
        record = self.known.get(key, {})
        uri = (options.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
               or f"file:{options.get('save_dir', './mlruns')}")
        store = local_store(uri)
        if store is not None:  # MLflow 3 refuses its file store unless told it is wanted
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        filled = "run_id" not in options and bool(record.get("run_id")) \
            and record.get("tracking_uri") == uri
        logger = make({**options, "run_id": record["run_id"]} if filled else options)
        if not self.lead:
            return logger
        try:
            run_id = made_run(logger)  # made now, so that trackers.json can say it
        except Exception as exc:
            if not (filled and getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"):
                raise
            log.warning("the MLflow run %s of %s is not in %s; starting a new one",
                        record["run_id"], self.path, uri)
            logger = make(options)
            run_id = made_run(logger)
        self.ids[key] = {"run_id": run_id, "experiment_id": logger.experiment_id,
                         "tracking_uri": uri}
        if record.get("run_id") == run_id and record.get("tracking_uri") == uri:
            self._continue_mlflow(logger, store)
        return logger

    def _continue_mlflow(self, logger: Any, store: Path | None) -> None:
        """Mark the run running again; cut what the previous attempt logged after its
        last checkpoint from the file store (a database or server cannot be edited)."""
        step = self.resume_step
        logger.experiment.update_run(logger.run_id, status="RUNNING")
        if store is None:
            log.warning("MLflow run %s: steps >= %d the previous attempt logged after its "
                        "last checkpoint stay in the store; they may show twice",
                        logger.run_id, step)
            return
        dropped = drop_steps(store / str(logger.experiment_id) / str(logger.run_id) / "metrics",
                             step)
        if dropped:
            log.info("MLflow run %s: dropped %d values logged at steps >= %d by the "
                     "previous attempt", logger.run_id, dropped, step)

    def _wandb(self, key: str, options: dict, make: Callable) -> Any:
        record = self.known.get(key, {})
        run_id = record.get("id") or (secrets.token_hex(4) if self.lead else None)
        if not (options.get("id") or options.get("version")) and run_id:
            options["id"] = run_id
        options.setdefault("resume", "allow")
        logger = make(options)
        if self.lead:
            self.ids[key] = {"id": options.get("id") or options.get("version")}
        return logger


# ---- helpers -------------------------------------------------------------------------
def read_trackers(path: Path) -> dict:
    """trackers.json; a damaged one is reported and treated as absent (new tracker runs
    are better than a failed requeue)."""
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        data = f"unreadable ({exc})"
    if not isinstance(data, dict):
        log.warning("%s is %s; the trackers start new runs", path,
                    data if isinstance(data, str) else "not a JSON object")
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def run_names(run_dir: Path) -> tuple[str, str]:
    """(experiment, run name): the run folder's parent and its own name ("launcher" at
    the root); a curriculum phase, <run>/phases/<phase>, is `<run>/<phase>` in the
    experiment of its run."""
    run, name = run_dir, run_dir.name
    if run_dir.parent.name == layout.PHASES_DIR:
        run = run_dir.parent.parent
        name = f"{run.name}/{run_dir.name}"
    return run.parent.name or "launcher", name


def maker(kind: str, target: str | None = None) -> Callable:
    """Lightning's class for a shorthand, Hydra's instantiate for a block."""
    def make(options: dict) -> Any:
        from hydra.utils import get_class, instantiate

        if target is not None:
            return instantiate({"_target_": target, **options})
        name = next(name for name, k in CLASSES.items() if k == kind)
        return get_class(f"pytorch_lightning.loggers.{name}")(**options)

    return make


def class_kind(target: str) -> str | None:
    """The tracker whose Lightning class `target` is or derives from (None when the
    target does not import: instantiating it then says why)."""
    from hydra.utils import get_class

    try:
        cls = get_class(target)
    except Exception:
        return None
    return next((CLASSES[c.__name__] for c in cls.__mro__ if c.__name__ in CLASSES
                 and c.__module__.startswith(LIGHTNING_LOGGERS)), None)


def made_run(logger: Any) -> str:
    """The MLflow run's id, the run made if need be. MLflow exports the URI it uses as
    MLFLOW_TRACKING_URI; the user's own setting (or none) is put back, or the next
    logger this process builds (a curriculum's next phase) would log to this store."""
    before = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        return logger.run_id
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        os.environ.update({} if before is None else {"MLFLOW_TRACKING_URI": before})


def local_store(uri: str) -> Path | None:
    """The folder of an MLflow file store (`file:` URI or a bare path); None otherwise."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path))
    return Path(uri) if not parsed.scheme else None


def drop_steps(folder: Path, step: int) -> int:
    """Remove the lines logged at `step` or later ("timestamp value step ...") from the
    metric files under `folder`; a file left empty goes (MLflow cannot read one)."""
    from launcher.atomic import write_text

    dropped = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if not logged_from(line, step)]
        dropped += len(lines) - len(kept)
        if not kept:
            path.unlink()
        elif len(kept) < len(lines):
            write_text(path, "".join(kept))
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        if not any(sub.iterdir()):
            sub.rmdir()
    return dropped


def logged_from(line: str, step: int) -> bool:
    parts = line.split()
    return len(parts) >= 3 and parts[2].isdigit() and int(parts[2]) >= step

