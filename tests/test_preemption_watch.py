"""Several ranks agree on a signal at the same batches, whatever the optimizer steps do."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from launcher.components.callbacks import preemption
from launcher.components.callbacks.preemption import PreemptionWatch


class Strategy:
    def __init__(self) -> None:
        self.agreements = 0

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        self.agreements += 1
        return decision


def test_ranks_agree_every_n_batches_even_when_steps_skip_multiples(monkeypatch):
    left = []
    monkeypatch.setattr(preemption, "checkpoint_and_leave",
                        lambda trainer, exp_dir, policy: left.append(trainer.global_step))
    monkeypatch.setattr(preemption.FLAG, "received", None)
    watch = PreemptionWatch(Path("."), agree_every=8)
    strategy = Strategy()
    # two optimizers from an odd step: global_step 1, 3, 5, ... is never a multiple of 8
    trainers = [SimpleNamespace(world_size=2, global_step=1 + 2 * n, strategy=strategy)
                for n in range(24)]
    for n, trainer in enumerate(trainers[:20]):
        watch.on_train_batch_end(trainer, None, None, None, n)
    assert strategy.agreements == 2 and not left
    monkeypatch.setattr(preemption.FLAG, "received", 12)  # SIGUSR2 arrives
    for n, trainer in enumerate(trainers[20:], start=20):
        watch.on_train_batch_end(trainer, None, None, None, n)
    assert strategy.agreements == 3 and left == [trainers[23].global_step]


def test_one_process_acts_on_the_next_batch(monkeypatch):
    left = []
    monkeypatch.setattr(preemption, "checkpoint_and_leave",
                        lambda trainer, exp_dir, policy: left.append(trainer.global_step))
    monkeypatch.setattr(preemption.FLAG, "received", 12)
    PreemptionWatch(Path(".")).on_train_batch_end(
        SimpleNamespace(world_size=1, global_step=5, strategy=None), None, None, None, 0)
    assert left == [5]
