"""The study on the shared filesystem, and which trial a slot runs next.

The study is Optuna's journal file (safe on NFS, no database server). Slots
pull work: under one lock in the study folder, a slot first takes over a
trial whose slot is gone (a requeued slot gets its own trial back at once;
a dead process on this host, or silence past `grace_s`, frees the others),
and otherwise asks the study for a new trial while it has fewer than
`n_trials`. Counting and asking under the lock is what keeps the number of
trials exact when slots of several launches share the study.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.atomic import write_text
from launcher.search.spec import SearchSpec

LOCK = "claims.lock"


@dataclass(frozen=True)
class Claim:
    trial: Any  # optuna.trial.Trial
    number: int
    params: dict[str, Any]
    path: Path  # the claim file, touched while the trial runs
    resumed: bool  # taken over from a slot that is gone, or this slot's earlier attempt
    reported: frozenset[int] = frozenset()  # steps an earlier attempt reported already


def storage_of(spec: SearchSpec) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    Path(spec.dir).mkdir(parents=True, exist_ok=True)
    path = str(spec.journal)
    return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileSymlinkLock(path)))


def open_study(spec: SearchSpec, salt: str = "") -> Any:
    """The study, created on first use. With a seed, each slot samples from a stream of
    its own (`salt`, and how many trials the study had): slots seeded alike, or a
    relaunch, would otherwise propose the trials proposed before."""
    import optuna

    from launcher.search.samplers import pruner_of, sampler_of

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = storage_of(spec)
    try:
        had = len(storage.get_all_trials(storage.get_study_id_from_name(spec.study),
                                         deepcopy=False))
    except KeyError:  # not created yet
        had = 0
    return optuna.create_study(
        study_name=spec.study, storage=storage, load_if_exists=True,
        sampler=sampler_of(spec, f"{salt}:{had}"), pruner=pruner_of(spec),
        directions=spec.directions)


def next_trial(study: Any, spec: SearchSpec, owner: dict[str, Any]) -> Claim | None:
    """The trial this slot runs next; None when the study has all its trials."""
    from optuna.storages.journal import JournalFileSymlinkLock
    from optuna.trial import Trial, TrialState

    from launcher.search.space import parse_params

    spec.claims.mkdir(parents=True, exist_ok=True)
    lock = JournalFileSymlinkLock(str(Path(spec.dir) / LOCK))
    while not lock.acquire():
        time.sleep(0.05)
    try:
        trials = study.get_trials(deepcopy=False)
        for frozen in trials:
            if frozen.state == TrialState.RUNNING:
                path = spec.claims / f"{frozen.number}.json"
                mine = same_slot(read_claim(path), owner)
                if mine or is_abandoned(path, spec.grace_s):
                    write_claim(path, owner)
                    return Claim(Trial(study, frozen._trial_id), frozen.number,
                                 dict(frozen.params), path, resumed=True,
                                 reported=frozenset(frozen.intermediate_values))
        if len(trials) >= spec.n_trials:
            return None
        trial = study.ask(parse_params(spec.params))
        path = spec.claims / f"{trial.number}.json"
        write_claim(path, owner)
        return Claim(trial, trial.number, dict(trial.params), path, resumed=False)
    finally:
        lock.release()


def read_claim(path: Path) -> dict[str, Any] | None:
    try:
        claim = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return claim if isinstance(claim, dict) else None


def write_claim(path: Path, owner: dict[str, Any]) -> None:
    write_text(path, json.dumps({**owner, "claimed": time.strftime("%Y-%m-%dT%H:%M:%S")}),
               small=True)


def release(claim: Claim) -> None:
    """The trial has ended (complete, pruned or failed): nobody runs it any more."""
    claim.path.unlink(missing_ok=True)


def same_slot(claim: dict[str, Any] | None, owner: dict[str, Any]) -> bool:
    """The claim is this slot's, from an earlier attempt of the same job (a requeue)."""
    return bool(claim) and all(claim.get(k) == owner.get(k) for k in ("sweep", "slot"))


def is_abandoned(path: Path, grace_s: float) -> bool:
    """Its slot is gone: a dead process on this host, or silent for `grace_s`."""
    from launcher.liveness import is_alive

    claim = read_claim(path)
    if claim is None:
        return True  # never written whole: its slot died claiming it
    if is_alive(claim) is False:
        return True
    try:
        return time.time() - path.stat().st_mtime > grace_s
    except FileNotFoundError:
        return True


@contextmanager
def heartbeat(path: Path, every_s: float) -> Iterator[None]:
    """Touch the claim file every `every_s` while the trial runs, so that other slots
    can tell a live trial from one whose slot is gone."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                os.utime(path)
            except FileNotFoundError:
                return

    thread = threading.Thread(target=beat, name="trial-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
