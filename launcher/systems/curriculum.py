"""Training in phases (curriculum learning), each phase continuing from the one before.

    system: {_target_: launcher.systems.curriculum.CurriculumSystem}
    curriculum:
      - name: short                                     # folder phases/short/
        dataset: {train: {max_digits: 2}, valid: {max_digits: 2}}
        trainer: {max_epochs: 2}
        optim: {lr: 0.005}
      - name: long
        trainer: {max_epochs: 3}
        optim: {lr: 0.002}

A phase's block is merged over the run's config for that phase only
(mappings key by key, lists replaced); it may change PHASE_KEYS. Each phase
trains in its own folder `<run_dir>/phases/<name>/` with its own
checkpoints, metrics.csv and averaged models, so that resuming works in any
phase: a finished phase (its `phase.json` says completed) is skipped, an
interrupted one resumes from its own newest checkpoint, and a phase without
checkpoints starts from the previous phase's final weights (`final.pth`).
`evaluate` tests the last phase's weights; `collect_stats` uses the run's
own config.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.errors import ConfigError
from launcher.systems.base.system import System, stage

log = logging.getLogger("launcher.systems.curriculum")
PHASES_DIR, PHASE_FILE, FINAL_WEIGHTS = layout.PHASES_DIR, layout.PHASE_FILE, layout.FINAL_WEIGHTS
PHASE_KEYS = ("name", "trainer", "optim", "optimizer", "optims", "optimizers", "scheduler",
              "schedulers", "scheduler_interval", "scheduler_monitor", "dataset",
              "dataloader", "best_model_criterion", "model", "lightning_module")
# Devices are stated once for the whole run (resources); a phase cannot change them.
FIXED_TRAINER_KEYS = ("accelerator", "devices", "num_nodes", "strategy")
COMPLETED, RUNNING = "completed", "running"


@dataclass(frozen=True)
class Phase:
    index: int
    name: str
    config: Any  # the run config with this phase's changes merged in
    dir: Path


def build_phases(config: Any, run_dir: Path) -> list[Phase]:
    """The phases of `config['curriculum']`, each with its merged config; checked."""
    from omegaconf import OmegaConf

    blocks = config.get("curriculum")
    if not blocks or isinstance(blocks, str | Mapping):
        raise ConfigError("the curriculum needs a list of phases", key="curriculum",
                          hint="e.g. curriculum: [{name: short, trainer: {max_epochs: 2}}, "
                               "{name: long}]")
    base = config if OmegaConf.is_config(config) else OmegaConf.create(config)
    phases, names = [], set()
    for i, block in enumerate(blocks):
        name = _phase_name(block, i)
        if name in names:
            raise ConfigError(f"two phases are called '{name}'", key=f"curriculum[{i}].name",
                              hint="give each phase its own name")
        names.add(name)
        changes = {k: v for k, v in block.items() if k != "name"}
        merged = OmegaConf.merge(base, OmegaConf.create(_plain(changes)))
        phases.append(Phase(i, name, merged, Path(run_dir) / PHASES_DIR / name))
    return phases


def check_phases(config: Any, recipe_dir: Path | None = None) -> None:
    """Refuse a curriculum that would fail later: checked before any phase trains."""
    from omegaconf import OmegaConf

    from launcher.components.selection import component_class

    for phase in build_phases(config, Path(".")):
        trainer = OmegaConf.to_container(phase.config["trainer"], resolve=True)
        trainer.pop("_target_", None)
        try:
            component_class(phase.config, "trainer", recipe_dir).check_options(trainer)
        except ConfigError as exc:
            raise ConfigError(f"phase '{phase.name}': {exc.reason}",
                              key=f"curriculum[{phase.index}].{exc.key}", hint=exc.hint) from None


def _phase_name(block: Any, index: int) -> str:
    if not isinstance(block, Mapping):
        raise ConfigError(f"phase {index} is {block!r}, not a block of settings",
                          key=f"curriculum[{index}]", hint="e.g. {name: short, trainer: {...}}")
    for key in block:
        if key not in PHASE_KEYS:
            raise ConfigError(f"a phase cannot change '{key}' (it can: {', '.join(PHASE_KEYS)})",
                              key=f"curriculum[{index}].{key}",
                              hint="settings of the whole run go outside 'curriculum'")
    for key in block.get("trainer") or {}:
        if key in FIXED_TRAINER_KEYS:
            raise ConfigError(f"a phase cannot change trainer.{key}: devices and strategy "
                              "are set once for the run", key=f"curriculum[{index}].trainer.{key}",
                              hint=f"set trainer.{key} (or resources) outside 'curriculum'")
    name = str(block.get("name", f"phase{index + 1}"))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"phase name '{name}' is not a plain folder name",
                          key=f"curriculum[{index}].name", hint="use letters, digits, _ . -")
    return name


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node


def read_phase(phase_dir: Path) -> dict[str, Any]:
    path = Path(phase_dir) / PHASE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_phase(phase: Phase, state: str, **details: Any) -> None:
    """`phase.json`: how the phase stands and where its first weights came from."""
    record = {**read_phase(phase.dir), "phase": phase.name, "index": phase.index,
              **details, "state": state}
    phase.dir.mkdir(parents=True, exist_ok=True)
    tmp = phase.dir / f".{PHASE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(phase.dir / PHASE_FILE)


class CurriculumSystem(System):
    """A System whose `train` runs the phases of `curriculum` in order."""

    config_keys = ("curriculum",)

    def __init__(self, config: Mapping) -> None:
        super().__init__(config)
        self.check_config(config, self.recipe_dir)
        self.phases = build_phases(config, self.exp_dir)
        self.run_dir = self.exp_dir

    @classmethod
    def check_config(cls, config: Any, recipe_dir: Path | None = None) -> None:
        """The phases, checked; meant to run before anything is queued, as well."""
        check_phases(config, recipe_dir)

    @stage
    def train(self) -> None:
        """Train each phase that is not finished, each from the weights the one before left."""
        from launcher.ranks import process_rank
        from launcher.signals import stop_between_stages

        weights = None  # the previous phase's final weights, when trained in this process
        for phase, previous in zip(self.phases, [None, *self.phases[:-1]], strict=True):
            stop_between_stages(self.run_dir, process_rank() == 0, f"before phase {phase.name}")
            if read_phase(phase.dir).get("state") == COMPLETED:
                log.info("phase %s: already completed; skipped", phase.name)
                weights = None
                continue
            weights = self.train_phase(phase, previous, weights)

    def train_phase(self, phase: Phase, previous: Phase | None,
                    weights: dict | None) -> dict:
        """Resume the phase from its own checkpoint, else start it from the previous
        phase's final weights; return its final weights."""
        import torch

        from launcher.components.callbacks.checkpoints import resume_checkpoint
        from launcher.layout import CHECKPOINT_DIR
        from launcher.ranks import process_rank
        from launcher.signals import JobEnds

        lead = process_rank() == 0
        with self.in_phase(phase):
            self.seed()
            model = self.build_model()
            resume = resume_checkpoint(phase.dir / CHECKPOINT_DIR)
            if resume is not None:
                log.info("phase %s: resuming from %s", phase.name, resume)
            elif previous is not None:
                source = previous.dir / FINAL_WEIGHTS
                model.load_state_dict(weights if weights is not None
                                      else torch.load(source, map_location="cpu"))
                log.info("phase %s: starting from the final weights of phase %s",
                         phase.name, previous.name)
            if resume is None and lead:
                started = str(previous.dir / FINAL_WEIGHTS) if previous else "initial"
                write_phase(phase, RUNNING, started_from=started)
            trainer = self.build_trainer(self.build_lightning_module(model))
            try:
                trainer.fit(ckpt_path=str(resume) if resume else None)
            except JobEnds:
                self._mirror_status(phase, lead)
                raise
            final = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            if lead:
                save_atomically(final, phase.dir / FINAL_WEIGHTS)
                write_phase(phase, COMPLETED, final_weights=str(phase.dir / FINAL_WEIGHTS))
            log.info("phase %s: done", phase.name)
            return final

    @stage
    def evaluate(self) -> dict[str, float]:
        """Test the last phase's weights; `evaluate.json` goes to the run folder as well."""
        import shutil

        last = self.phases[-1]
        with self.in_phase(last):
            metrics = super().evaluate()
        if metrics:  # only rank 0 evaluates
            shutil.copyfile(last.dir / layout.EVALUATE_FILE, self.run_dir / layout.EVALUATE_FILE)
        return metrics

    @contextlib.contextmanager
    def in_phase(self, phase: Phase) -> Iterator[None]:
        """Build and train with the phase's config, in the phase's folder."""
        saved = self.config, self.exp_dir
        self.config, self.exp_dir = phase.config, phase.dir
        try:
            yield
        finally:
            self.config, self.exp_dir = saved

    def _mirror_status(self, phase: Phase, lead: bool) -> None:
        """A stop or requeue is recorded in the phase folder; `launch` reads the run's."""
        from launcher.status_file import status_as_far_as_readable, write_status

        status = status_as_far_as_readable(phase.dir)
        if lead and status.get("state"):
            details = {k: v for k, v in status.items() if k not in ("state", "updated")}
            write_status(self.run_dir, status["state"], phase=phase.name, **details)


def save_atomically(state: dict, path: Path) -> None:
    import torch

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)
