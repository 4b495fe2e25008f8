"""Exact resume: interrupted runs end bitwise equal to uninterrupted ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import edit_config

from launcher.checkpointing import resume_checkpoint
from launcher.runstate import read_status

EXACT = ["+model.dropout=0.3", "trainer.max_epochs=3", "++trainer.checkpoint_every_n_steps=1"]


def final_weights(run_dir: Path) -> str:
    return json.loads((run_dir / "probe.rank0.json").read_text())["weights_sha"]


def only_run_dir(exp: Path) -> Path:
    (run_dir,) = [p for p in exp.iterdir() if p.is_dir() and p.name != "sweeps"]
    return run_dir


def test_three_interruptions_mid_epoch_end_bitwise_equal(launch_cli, toy_recipe):
    edit_config(toy_recipe, lambda c: c.update(
        lightning_module={"_target_": "src.probe.InterruptingProbe"}))
    clean = toy_recipe / "clean"
    assert launch_cli(toy_recipe, f"exp_root={clean}", *EXACT)[0] == 0

    exp = toy_recipe / "interrupted"
    args = [f"exp_root={exp}", *EXACT, "+interrupt_at=[2,5,9]"]
    codes = [launch_cli(toy_recipe, *args)[0] for _ in range(4)]
    assert codes == [143, 143, 143, 0]
    run_dir = only_run_dir(exp)
    assert read_status(run_dir)["state"] == "completed"
    log = (run_dir / "run.log").read_text()
    assert log.count("resuming from") == 3
    assert final_weights(run_dir) == final_weights(only_run_dir(clean))


def test_truncated_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    import os
    import time

    import torch

    directory = tmp_path / "checkpoints"
    directory.mkdir()
    good = directory / "periodic-step00000004.ckpt"
    torch.save({"state_dict": {}, "loops": {}}, good)
    newest = directory / "last.ckpt"
    torch.save({"state_dict": {}, "loops": {}}, newest)
    newest.write_bytes(newest.read_bytes()[:40])  # truncated
    later = time.time() + 5
    os.utime(newest, (later, later))
    with caplog.at_level("WARNING"):
        assert resume_checkpoint(directory) == good
    assert "last.ckpt is unreadable" in caplog.text
    assert "resuming from the older checkpoint" in caplog.text


@pytest.mark.parametrize("size,world", [(10, 1), (10, 3), (7, 2)])
def test_resumed_batch_order_continues_the_epoch(size, world):
    from launcher.data_order import ResumableBatchSampler

    def sampler(rank):
        s = ResumableBatchSampler(size, 2, shuffle=True, seed=5, rank=rank, world_size=world)
        s.set_epoch(3)
        return s

    for rank in range(world):
        full = list(sampler(rank))
        resumed = sampler(rank)
        resumed.resume(3, 2)
        assert list(resumed) == full[2:]
        assert list(resumed) == full  # the skip applies once
    shards = [i for r in range(world) for b in sampler(r) for i in b]
    assert set(shards) == set(range(size))
