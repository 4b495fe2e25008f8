"""Stages are methods; recipes add their own; unknown ones are refused."""

import pytest

from launcher.errors import ConfigError
from launcher.systems.base.system import System, stage


class WithDecode(System):
    ran: list

    @stage
    def decode(self):
        self.ran.append("decode")

    @stage
    def train(self):
        self.ran.append("train")


def test_shared_stages():
    assert System.known_stages() == ["collect_stats", "train", "evaluate"]


def test_a_subclass_adds_and_overrides_stages_and_runs_them_in_order(tmp_path):
    assert WithDecode.known_stages() == ["collect_stats", "train", "evaluate", "decode"]
    system = WithDecode({"run_dir": str(tmp_path)})
    system.ran = []
    system.run(["decode", "train"])
    assert system.ran == ["decode", "train"]


def test_unknown_stage_is_refused_before_any_stage_runs(tmp_path):
    system = WithDecode({"run_dir": str(tmp_path)})
    system.ran = []
    with pytest.raises(ConfigError, match=r"known stages of WithDecode: .*decode"):
        system.run(["train", "sing"])
    assert system.ran == []


def test_stats_weighted_by_a_device_tensor_give_the_same_epoch_means(launch_cli, toy_recipe,
                                                                     monkeypatch):
    """A batch's weight stays a tensor (on a GPU, reading it would wait for the GPU each
    step): Lightning must weigh the epoch means with it exactly as with its number."""
    import csv

    from launcher.components.modeling import lightning_module

    def epoch_means(exp):
        # batches of 24, 24 and 16: a plain mean of the batches would differ
        assert launch_cli(toy_recipe, f"exp_root={exp}", "dataloader.batch_size=24")[0] == 0
        (run_dir,) = exp.iterdir()
        with open(run_dir / "metrics.csv") as f:
            return [(r["train/loss"], r["valid/loss"]) for r in csv.DictReader(f)
                    if r.get("train/loss") or r.get("valid/loss")]

    as_tensors = epoch_means(toy_recipe / "tensors")
    assert len(as_tensors) >= 2
    monkeypatch.setattr(lightning_module, "_batch_size", lambda weight: int(weight))
    assert epoch_means(toy_recipe / "numbers") == as_tensors
