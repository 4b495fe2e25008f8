"""Stages are methods; recipes add their own; unknown ones are refused."""

import pytest

from launcher.errors import ConfigError
from launcher.system import System, stage


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


def test_a_subclass_adds_and_overrides_stages_and_runs_them_in_order():
    assert WithDecode.known_stages() == ["collect_stats", "train", "evaluate", "decode"]
    system = WithDecode({"run_dir": "."})
    system.ran = []
    system.run(["decode", "train"])
    assert system.ran == ["decode", "train"]


def test_unknown_stage_is_refused_before_any_stage_runs():
    system = WithDecode({})
    system.ran = []
    with pytest.raises(ConfigError, match=r"known stages of WithDecode: .*decode"):
        system.run(["train", "sing"])
    assert system.ran == []
