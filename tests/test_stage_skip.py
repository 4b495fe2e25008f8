"""A requeue or relaunch does not repeat a finished stage: collect_stats done before an
interruption is skipped (and says so) while the config and its outputs are unchanged,
and runs again when either changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import edit_config

from launcher.systems.base.stage_record import STAGE_FINGERPRINTS, StageRecord
from launcher.systems.base.system import System, stage

STATS_MODEL = '''
import torch

from .model import Regressor


class WithStats(Regressor):
    def collect_feats(self, x, y):
        return {"feats": x[:, None, :], "feats_lengths": torch.ones(len(x), dtype=torch.long)}
'''
SKIPPED = "stage collect_stats: skipped, done by an earlier attempt with the same config"


def stats_recipe(recipe: Path) -> None:
    (recipe / "src" / "stats.py").write_text(STATS_MODEL)
    edit_config(recipe, lambda c: c.update(
        stages=["collect_stats", "train"],
        model={"_target_": "src.stats.WithStats", "hidden": 8},
        lightning_module={"_target_": "src.probe.InterruptingProbe"}))


def interrupted_then_relaunched(launch_cli, recipe: Path, between=None) -> tuple[Path, dict]:
    """Stop the run during train (SIGTERM after step 2), call `between(run_dir)`, launch
    the same command again; return the run folder and the stats' mtimes before."""
    exp = recipe / "exp"
    args = [f"exp_root={exp}", "+interrupt_at=[2]"]
    assert launch_cli(recipe, *args)[0] == 143
    (run_dir,) = [p for p in exp.iterdir() if p.is_dir() and p.name != "sweeps"]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "stopped" and status["stages_done"] == ["collect_stats"]
    assert status[STAGE_FINGERPRINTS] == {"collect_stats": status["config"]}
    before = mtimes(run_dir)
    if between:
        between(run_dir)
    code, _, err = launch_cli(recipe, *args)
    assert code == 0, err[-3000:]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed"
    assert status["stages_done"] == ["collect_stats", "train"]
    assert set(status[STAGE_FINGERPRINTS]) == {"collect_stats", "train"}
    return run_dir, before


def mtimes(run_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(run_dir)): p.stat().st_mtime_ns
            for p in sorted((run_dir / "stats").rglob("*")) if p.is_file()}


def test_a_relaunch_skips_collect_stats_and_resumes_training(launch_cli, toy_recipe,
                                                           one_torch_thread):
    stats_recipe(toy_recipe)
    run_dir, before = interrupted_then_relaunched(launch_cli, toy_recipe)
    log = (run_dir / "run.log").read_text()
    assert log.count("stage collect_stats: start") == 1
    assert f"{SKIPPED} (stats in {run_dir / 'stats'}); resume=false" in log
    assert "stats/train/feats_stats.npz" in before and mtimes(run_dir) == before
    assert log.count("resuming from") == 1
    assert json.loads((run_dir / "probe.rank0.json").read_text())["steps"] == 8


def test_a_changed_config_collects_the_stats_again(launch_cli, toy_recipe, one_torch_thread):
    stats_recipe(toy_recipe)

    def more_epochs(run_dir: Path) -> None:  # the recipe edited: same folder, new fingerprint
        edit_config(toy_recipe, lambda c: c["trainer"].update(max_epochs=3))

    run_dir, before = interrupted_then_relaunched(launch_cli, toy_recipe, more_epochs)
    log = (run_dir / "run.log").read_text()
    assert log.count("stage collect_stats: start") == 2 and SKIPPED not in log
    assert "done by an earlier attempt with another config; running it again" in log
    after = mtimes(run_dir)
    assert after.keys() == before.keys() and all(after[k] != before[k] for k in after)
    assert json.loads((run_dir / "probe.rank0.json").read_text())["steps"] == 12


def test_deleted_stats_are_collected_again(launch_cli, toy_recipe, one_torch_thread):
    stats_recipe(toy_recipe)

    def delete(run_dir: Path) -> None:
        (run_dir / "stats" / "valid" / "feats_stats.npz").unlink()

    run_dir, before = interrupted_then_relaunched(launch_cli, toy_recipe, delete)
    log = (run_dir / "run.log").read_text()
    assert log.count("stage collect_stats: start") == 2 and SKIPPED not in log
    assert "not all that it wrote is there" in log
    assert mtimes(run_dir).keys() == before.keys()


class WithDecode(System):
    ran: list[str]

    @stage
    def decode(self) -> None:
        self.ran.append("decode")


def hand_made(run_dir: Path, **status) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "status.json").write_text(json.dumps({"state": "running", **status}))


def write_stats(run_dir: Path, splits=("train", "valid")) -> None:
    for split in splits:
        folder = run_dir / "stats" / split
        folder.mkdir(parents=True)
        (folder / "stats_keys").write_text("feats\n")
        (folder / "feats_stats.npz").write_bytes(b"")
        (folder / "feats_shape").write_text("0 1,4\n")


def system(run_dir: Path, **config) -> WithDecode:
    made = WithDecode({"run_dir": str(run_dir), "run_identity": {"fingerprint": "now"},
                       "dataset": {"train": {}, "valid": {}}, **config})
    made.ran = []
    return made


@pytest.mark.parametrize("recorded, outputs, skipped", [
    ({}, "all", set()),  # nothing recorded (a status.json of an older launcher)
    ({"collect_stats": "now", "train": "now", "evaluate": "now", "decode": "now"}, "all",
     {"collect_stats", "train", "evaluate", "decode"}),
    ({"collect_stats": "then", "train": "then", "evaluate": "then", "decode": "then"}, "all",
     set()),
    ({"collect_stats": "now", "train": "now", "evaluate": "now", "decode": "now"}, "none",
     {"decode"}),  # a recipe's own stage: the record alone decides
    ({"collect_stats": "now"}, "train split only", set()),  # the valid set's stats are gone
], ids=["unrecorded", "same-config", "other-config", "outputs-gone", "stats-half-gone"])
def test_the_skip_rule(tmp_path, recorded, outputs, skipped):
    run_dir = tmp_path / "run"
    hand_made(run_dir, config="now", stages_done=sorted(recorded),
              **{STAGE_FINGERPRINTS: recorded})
    if outputs == "all":
        write_stats(run_dir)
        (run_dir / "checkpoints").mkdir()
        (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
        (run_dir / "evaluate.json").write_text("{}")
    elif outputs == "train split only":
        write_stats(run_dir, splits=("train",))
    made = system(run_dir)
    record = StageRecord.read(run_dir, made.config)
    decided = {name for name in [*System.known_stages(), "decode"]
               if record.decide(made, name).skip}
    assert decided == skipped


def test_stages_are_recorded_as_they_finish_and_decided_on_what_was_there_before(tmp_path):
    run_dir = tmp_path / "run"
    hand_made(run_dir, config="now", restarts=2, stages_done=["train"],
              **{STAGE_FINGERPRINTS: {"train": "then"}})
    made = system(run_dir)
    made.run(["decode", "decode"])  # read once: what this attempt records decides nothing
    assert made.ran == ["decode", "decode"]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "running" and status["restarts"] == 2
    assert status["stages_done"] == ["decode", "train"]
    assert status[STAGE_FINGERPRINTS] == {"train": "then", "decode": "now"}
    made.run(["decode"])  # the next attempt
    assert made.ran == ["decode", "decode"]


def test_a_system_outside_a_launcher_job_records_and_skips_nothing(tmp_path):
    made = WithDecode({"run_dir": str(tmp_path)})
    made.ran = []
    made.run(["decode"])
    made.run(["decode"])
    assert made.ran == ["decode", "decode"] and not (tmp_path / "status.json").exists()
