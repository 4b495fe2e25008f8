"""Sharded checkpoint folders: written whole or not at all, skipped when damaged, read
by resume, averaging and evaluate, and resumed on another number of ranks.

The folder logic is tested on folders written by two gloo processes through
`torch.distributed.checkpoint` (FSDP's layout, without Lightning, whose FSDP refuses
CPUs); training runs use FSDP2 (`strategy: fsdp2`), which Lightning runs on CPUs."""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path

import pytest
import torch
from sharded_writer import weights, write_folders

from launcher.atomic import remove_stale
from launcher.components.callbacks.averaging import average_checkpoints
from launcher.components.callbacks.checkpoint_folders import damage, model_weights, read_checkpoint
from launcher.components.callbacks.checkpoints import resume_checkpoint
from launcher.status_file import read_status


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> list[Path]:
    """Two sharded checkpoints (seeds 1 and 2) written by two ranks."""
    root = tmp_path_factory.mktemp("sharded")
    paths = [root / "checkpoints" / f"valid_loss.epoch00{s}.ckpt" for s in (1, 2)]
    write_folders(paths, [1, 2], root)
    return paths


def copy_of(folder: Path, target: Path) -> Path:
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(folder, target)
    return target


def test_a_folder_written_by_two_ranks_reads_whole(folders):
    assert sorted(p.name for p in folders[0].iterdir()) == [
        ".metadata", "__0_0.distcp", "__1_0.distcp", "meta.pt"]
    full = read_checkpoint(folders[0])
    expected = weights(1)
    assert full["state_dict"].keys() == expected.keys()
    assert all(torch.equal(full["state_dict"][k], v) for k, v in expected.items())
    assert full["global_step"] == 10 and "loops" in full
    assert model_weights(folders[0]).keys() == {k.removeprefix("model.") for k in expected}
    assert damage(folders[0]) is None


def test_folders_are_averaged_as_files_are(folders, tmp_path):
    target = average_checkpoints(folders, "valid/loss", tmp_path)
    assert target.name == "valid.loss.ave_2best.pth"
    averaged = torch.load(target)
    one, two = weights(1), weights(2)
    assert torch.allclose(averaged["encoder.weight"],
                          (one["model.encoder.weight"] + two["model.encoder.weight"]) / 2)
    assert torch.equal(averaged["counter"], one["model.counter"])  # integers: taken as is


def test_evaluate_loads_the_bare_model_from_a_folder(folders, tmp_path):
    from launcher.systems.base.system import load_trained_weights

    run = tmp_path / "run"
    copy_of(folders[1], run / "checkpoints" / "last.ckpt")
    model = torch.nn.Module()
    model.encoder, model.decoder = torch.nn.Linear(4, 8), torch.nn.Linear(8, 1)
    model.register_buffer("counter", torch.tensor(0))
    assert load_trained_weights(model, run) == run / "checkpoints" / "last.ckpt"
    assert torch.equal(model.encoder.weight, weights(2)["model.encoder.weight"])


DAMAGES = {
    "shard missing": (lambda f: (f / "__1_0.distcp").unlink(), "shard __1_0.distcp is missing"),
    "shard truncated": (lambda f: os.truncate(f / "__0_0.distcp", 10), "is truncated"),
    "meta.pt missing": (lambda f: (f / "meta.pt").unlink(), "meta.pt is missing"),
    "metadata missing": (lambda f: (f / ".metadata").unlink(), ".metadata is missing"),
    "metadata garbled": (lambda f: (f / ".metadata").write_bytes(b"\x80garbage"),
                         ".metadata is unreadable"),
}


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_newest_folder_is_skipped_for_the_previous_one(folders, tmp_path, caplog,
                                                                 how):
    directory = tmp_path / "checkpoints"
    older = copy_of(folders[0], directory / "valid_loss.epoch001.ckpt")
    newest = copy_of(folders[1], directory / "last.ckpt")
    later = time.time() + 5
    os.utime(newest / "meta.pt", (later, later))
    assert resume_checkpoint(directory) == newest
    damage_it, reason = DAMAGES[how]
    damage_it(newest)
    assert reason in damage(newest)
    with caplog.at_level("WARNING"):
        assert resume_checkpoint(directory) == older
    assert f"{newest} is unreadable" in caplog.text and reason in caplog.text
    assert "resuming from the older checkpoint" in caplog.text
    with pytest.raises(ValueError, match="is damaged"):
        read_checkpoint(newest)


def test_temporary_and_replaced_folders_are_left_alone_then_tidied(folders, tmp_path):
    directory = tmp_path / "checkpoints"
    # killed mid-save: a complete-looking staging folder; killed between the two renames
    # of a replacement: the old last.ckpt moved aside and nothing in its place
    staging = copy_of(folders[1], directory / ".valid_loss.epoch002.ckpt.123.tmp")
    aside = copy_of(folders[0], directory / ".last.ckpt.123.old")
    assert resume_checkpoint(directory) is None
    removed = remove_stale([tmp_path])
    assert removed == [staging] and not staging.exists() and not aside.exists()
    assert read_checkpoint(directory / "last.ckpt")["global_step"] == 10  # put back
    assert resume_checkpoint(directory) == directory / "last.ckpt"


class FakeStrategy:
    """What AtomicFolders needs of a Lightning strategy; the save writes a folder file by
    file and can fail midway."""

    is_global_zero = True
    fail_after: int | None = None

    def broadcast(self, value):
        return value

    def barrier(self, name=None):
        pass

    def save_checkpoint(self, checkpoint, filepath, storage_options=None):
        path = Path(filepath)
        path.mkdir(parents=True)
        for i, name in enumerate(("__0_0.distcp", "__1_0.distcp", ".metadata", "meta.pt")):
            if i == self.fail_after:
                raise OSError("disk gone")
            (path / name).write_text(checkpoint["tag"])

    def remove_checkpoint(self, filepath):
        Path(filepath).unlink()


def fake_strategy():
    from launcher.components.trainers.sharded import AtomicFolders

    class Strategy(AtomicFolders, FakeStrategy):
        writes_folders = True

    return Strategy()


def test_a_folder_replaces_the_old_one_whole_or_not_at_all(tmp_path):
    strategy, target = fake_strategy(), tmp_path / "last.ckpt"
    strategy.save_checkpoint({"tag": "one"}, target)
    assert (target / "meta.pt").read_text() == "one"
    strategy.fail_after = 2
    with pytest.raises(OSError, match="disk gone"):
        strategy.save_checkpoint({"tag": "two"}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # nothing half-done
    assert (target / "__1_0.distcp").read_text() == "one"
    strategy.fail_after = None
    strategy.save_checkpoint({"tag": "three"}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert {p.read_text() for p in target.iterdir()} == {"three"}
    strategy.remove_checkpoint(target)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_saving_a_folder_says_so_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from launcher.atomic import NoSpace

    strategy, target = fake_strategy(), tmp_path / "last.ckpt"
    strategy.save_checkpoint({"tag": "one"}, target)

    def full(self, checkpoint, filepath, storage_options=None):
        Path(filepath).mkdir()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FakeStrategy, "save_checkpoint", full)
    with pytest.raises(NoSpace, match=r"no space left on .* \(writing .*last.ckpt\)"):
        strategy.save_checkpoint({"tag": "two"}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert (target / "meta.pt").read_text() == "one"


@pytest.mark.parametrize("saved,now", [(1, 2), (2, 1), (2, 3), (3, 2)])
def test_the_rest_of_an_epoch_is_dealt_to_another_number_of_ranks(saved, now):
    from launcher.components.data.batch_order import ResumableBatchSampler

    size, batch, done = 48, 4, 2

    def sampler(rank, world):
        s = ResumableBatchSampler(size, batch, shuffle=True, seed=3, rank=rank, world_size=world)
        s.set_epoch(1)
        return s

    trained = [i for r in range(saved) for b in list(sampler(r, saved))[:done] for i in b]
    position = done * batch * saved
    rest = []
    for rank in range(now):
        resumed = sampler(rank, now)
        resumed.resume_at(1, position)
        left = resumed.batches_left(1)
        batches = list(resumed)
        assert len(batches) == left
        rest += [i for b in batches for i in b]
    counts = collections.Counter(trained + rest)
    assert set(counts) == set(range(size))
    # as DistributedSampler does, the rest is padded so that every rank has as many
    # batches: 32 left for 3 ranks repeats one sample
    assert sum(counts.values()) - size == (-(size - position)) % now
    assert list(sampler(0, now)) == list(sampler(0, now))  # the position applies once


def samples_per_epoch(run_dir: Path) -> dict[int, collections.Counter]:
    """How often each sample was trained on, per epoch, over every rank and attempt."""
    counts: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for path in run_dir.glob("samples.rank*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            counts[record["epoch"]].update(record["samples"])
    return counts


# ---- training runs: FSDP2 on two CPU ranks, checkpoints as folders ---------------------
FSDP2 = ["++trainer.strategy={name:fsdp2}", "resources.processes_per_node=2",
         "+model.dropout=0.3", "trainer.max_epochs=2", "dataset.train.size=384",
         "++trainer.checkpoint_every_n_steps=4", "++trainer.keep_periodic_checkpoints=2"]


def folder_names(run_dir: Path) -> list[str]:
    found = sorted((run_dir / "checkpoints").iterdir())
    assert all(p.is_dir() and damage(p) is None for p in found), found
    return [p.name for p in found]


def assert_same_sharded_outcome(run_dir: Path, clean_dir: Path) -> None:
    from test_resume import final_weights, metrics_by_key, tensors_equal

    assert metrics_by_key(run_dir) == metrics_by_key(clean_dir)
    names = folder_names(clean_dir)
    assert "last.ckpt" in names and len([n for n in names if n.startswith("valid_loss")]) == 2
    assert len([n for n in names if n.startswith("periodic-")]) == 2  # the newest two kept
    assert folder_names(run_dir) == names
    for name in names:
        ours, theirs = (read_checkpoint(d / "checkpoints" / name)["state_dict"]
                        for d in (run_dir, clean_dir))
        assert tensors_equal(ours, theirs), name
    averaged = "valid.loss.ave_2best.pth"
    assert tensors_equal(torch.load(run_dir / averaged), torch.load(clean_dir / averaged))
    evaluated = [json.loads((d / "evaluate.json").read_text()) for d in (run_dir, clean_dir)]
    assert evaluated[0]["metrics"] == evaluated[1]["metrics"]
    assert final_weights(run_dir) == final_weights(clean_dir)


def test_fsdp2_stopped_mid_epoch_resumes_exactly_from_sharded_folders(launch_cli, toy_recipe,
                                                                  one_torch_thread):
    from test_resume import full_recipe, only_run_dir

    full_recipe(toy_recipe)
    assert launch_cli(toy_recipe, f"exp_root={toy_recipe / 'clean'}", *FSDP2)[0] == 0
    clean = only_run_dir(toy_recipe / "clean")

    # two ranks agree on a signal every 8 batches: SIGTERM after step 3 stops the run at
    # step 8, mid epoch 0 (12 batches a rank); the best and periodic folders made before
    # it are replaced after it
    args = [f"exp_root={toy_recipe / 'stopped'}", *FSDP2, "+interrupt_at=[3]"]
    # (a signal to one rank, not to `launch`: the job ends stopped, exit 1 or 143)
    ends = [launch_cli(toy_recipe, *args)[0] for _ in range(2)]
    assert ends[0] in (1, 143) and ends[1] == 0, ends
    run_dir = only_run_dir(toy_recipe / "stopped")
    log = (run_dir / "run.log").read_text()
    assert "stopped at step 8" in log
    assert log.count("resuming from") == 1 and "written by" not in log
    assert_same_sharded_outcome(run_dir, clean)


@pytest.mark.parametrize("before,after,size", [(2, 1, 512), (1, 2, 512), (2, 1, 256)])
def test_fsdp2_resumes_on_another_number_of_ranks(launch_cli, toy_recipe, one_torch_thread,
                                                  before, after, size):
    """A sharded checkpoint of N ranks resumes on M: every sample of every epoch is
    trained once, each epoch validated once, and evaluate reads the last folder (no
    average kept). With 256 samples two ranks stop on the last batch of epoch 0, its
    validation still owed: nothing of it is left to deal out."""
    from conftest import edit_config
    from test_resume import metrics_by_key, only_run_dir

    edit_config(toy_recipe, lambda c: c["dataset"].update(
        test={"_target_": "src.model.ToyData", "size": 32, "seed": 2}))
    args = [f"exp_root={toy_recipe / 'exp'}", "++trainer.strategy={name:fsdp2}",
            "+lightning_module._target_=src.probe.SampleLog", "+interrupt_at=[3]",
            f"dataset.train.size={size}", "stages=[train,evaluate]",
            "++trainer.average_checkpoints=false"]
    assert launch_cli(toy_recipe, *args, f"resources.processes_per_node={before}")[0] != 0
    run_dir = only_run_dir(toy_recipe / "exp")
    assert read_status(run_dir)["state"] == "stopped"
    stopped = 8 if before == 2 else 4  # two ranks agree on the signal every 8 batches
    position = stopped * 16 * before
    assert launch_cli(toy_recipe, *args, f"resources.processes_per_node={after}")[0] == 0

    log = (run_dir / "run.log").read_text()
    said = (f"the checkpoint was written by {before} rank(s) and this run has {after}: the "
            f"rest of epoch 0 (from sample {position} of {size} in its order) is dealt out "
            f"to {after} rank(s); no sample is skipped or repeated")
    assert (said in log) == (position < size)
    for epoch, counts in samples_per_epoch(run_dir).items():
        assert len(counts) == size and set(counts.values()) == {1}, epoch
    steps = position // 16 // before + (size - position) // 16 // after + size // 16 // after
    metrics = metrics_by_key(run_dir)  # a value logged twice fails here
    assert sorted((e, s) for e, s, column in metrics if column == "valid/loss") == [
        ("0", str(position // 16 // before + (size - position) // 16 // after - 1)),
        ("1", str(steps - 1))]
    assert json.loads((run_dir / "probe.rank0.json").read_text())["steps"] == steps
    evaluated = json.loads((run_dir / "evaluate.json").read_text())
    assert evaluated["weights"].endswith("checkpoints/last.ckpt")
    assert (run_dir / "checkpoints" / "last.ckpt").is_dir()
    assert torch.isfinite(torch.tensor(evaluated["metrics"]["test/loss"]))
