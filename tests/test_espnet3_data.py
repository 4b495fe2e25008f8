"""ESPnet3's data spellings: the organizer form of `dataset`, `iter_factory: null`, a
CommonCollateFn, and collect_stats in ESPnet3's `stats_dir/{train,valid}/` layout.
ESPnet's own iterators need espnet2 and are refused before launch without it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import edit_config, rejected

from launcher.components.data.collate import CommonCollateFn
from launcher.components.data.data_organizer import DataOrganizer
from launcher.components.data.espnet_iterator import espnet_available

SEQS = '''
import torch
from torch import nn
from torch.utils.data import Dataset


class Seqs(Dataset):
    """Item i: `speech` of 2 + i % 3 frames of 3 features (i + frame), a 0/1 label."""

    def __init__(self, size: int = 8, offset: int = 0) -> None:
        self.size, self.offset = size, offset

    def __len__(self):
        return self.size

    def __getitem__(self, i):
        i += self.offset
        frames = torch.arange(2 + i % 3, dtype=torch.float32)[:, None] + i
        return {"speech": frames.repeat(1, 3), "label": torch.tensor(float(i % 2))}


class Scale:
    """A per-item transform, as an organizer entry's `transform`."""

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    def __call__(self, item):
        return {**item, "speech": item["speech"] * self.factor}


class SeqModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def collect_feats(self, speech, speech_lengths, **_):
        return {"feats": speech, "feats_lengths": speech_lengths}

    def forward(self, speech, speech_lengths, label):
        mask = (torch.arange(speech.shape[1])[None] < speech_lengths[:, None]).float()
        pooled = (speech * mask[..., None]).sum(1) / speech_lengths[:, None]
        loss = ((self.linear(pooled / 10).squeeze(-1) - label) ** 2).mean()
        return loss, {"loss": loss.detach()}, torch.tensor(float(len(speech)))
'''

COLLATE = {"_target_": "launcher.components.data.collate.CommonCollateFn", "int_pad_value": -1}
STANDARD = {"train": {"iter_factory": None, "batch_size": 4, "shuffle": True},
            "valid": {"iter_factory": None, "batch_size": 4}}
ITER_FACTORY = {"_target_": "espnet2.iterators.sequence_iter_factory.SequenceIterFactory",
                "shuffle": True, "batches": {"type": "sorted", "batch_size": 2,
                                             "shape_files": ["stats/train/feats_shape"]}}


def entry(name: str, size: int, offset: int = 0, **extra) -> dict:
    return {"name": name, "dataset": {"_target_": "src.seqs.Seqs", "size": size,
                                      "offset": offset}, **extra}


def organized(config: dict) -> None:
    """The toy recipe in ESPnet3's data spelling: an organizer, iter_factory: null."""
    config["stages"] = ["collect_stats", "train"]
    config["model"] = {"_target_": "src.seqs.SeqModel"}
    config["dataset"] = {
        "_target_": "launcher.components.data.data_organizer.DataOrganizer",
        "train": [entry("a", 6), entry("b", 4, offset=6,
                                       transform={"_target_": "src.seqs.Scale"})],
        "valid": [entry("dev", 5, offset=100)]}
    config["dataloader"] = {"collate_fn": COLLATE, **STANDARD}
    config["trainer"]["max_epochs"] = 1


@pytest.fixture
def seqs_recipe(toy_recipe: Path) -> Path:
    (toy_recipe / "src" / "seqs.py").write_text(SEQS)
    edit_config(toy_recipe, organized)
    return toy_recipe


def launched(launch_cli, recipe: Path, *overrides: str) -> Path:
    code, _, err = launch_cli(recipe, f"exp_root={recipe / 'exp'}", *overrides)
    assert code == 0, err
    (run_dir,) = [p for p in (recipe / "exp").iterdir() if p.name != "sweeps"]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    return run_dir


def shape_lines(ids, offset: int = 0) -> str:
    return "".join(f"{i} {2 + (i + offset) % 3},3\n" for i in ids)


def expected_stats(items: list[int]) -> tuple[int, np.ndarray, np.ndarray]:
    frames = np.concatenate([np.arange(2 + i % 3)[:, None].repeat(3, 1) + i for i in items])
    return len(frames), frames.sum(0), (frames ** 2).sum(0)


# ---- the organizer, in-process -----------------------------------------------------
def items(size: int, offset: int = 0) -> list[dict]:
    return [{"speech": torch.full((2 + i % 3, 3), float(i)), "label": torch.tensor(i % 2)}
            for i in range(offset, offset + size)]


def doubled(item: dict) -> dict:
    return {**item, "speech": item["speech"] * 2}


def test_an_organizer_combines_train_and_valid_and_names_test_sets():
    organizer = DataOrganizer(
        train=[{"name": "a", "dataset": items(3)},
               {"name": "b", "dataset": items(2, offset=3), "transform": doubled}],
        valid=[{"name": "dev", "dataset": items(2)}],
        test=[{"name": "t1", "dataset": items(1)}, {"name": "t2", "dataset": items(2)}])
    assert len(organizer.train) == 5 and len(organizer.valid) == 2
    assert sorted(organizer.test) == ["t1", "t2"] and len(organizer.test["t2"]) == 2
    item = organizer.train[3]  # the first of b, transformed
    assert set(item) == {"speech", "label"} and item["speech"][0, 0] == 6.0
    organizer.train.use_espnet_collator = True  # what a CommonCollateFn asks for
    uid, item = organizer.train[4]
    assert uid == "4" and item["speech"].shape == (3, 3)
    with pytest.raises(ValueError, match="both train and valid"):
        DataOrganizer(train=[{"name": "a", "dataset": items(1)}])


def test_common_collate_fn_pads_and_adds_lengths_as_espnet_does():
    ids, batch = CommonCollateFn(int_pad_value=-1)([
        ("u1", {"x": torch.ones(2, 3), "t": torch.tensor([1, 2, 3]), "y": torch.tensor(1.0)}),
        ("u2", {"x": torch.ones(1, 3), "t": torch.tensor([4]), "y": torch.tensor(0.0)})])
    assert ids == ["u1", "u2"]
    assert batch["x"].shape == (2, 2, 3) and batch["x_lengths"].tolist() == [2, 1]
    assert batch["t"].tolist() == [[1, 2, 3], [4, -1, -1]] and batch["y"].shape == (2,)
    assert "y_lengths" not in batch


# ---- whole runs --------------------------------------------------------------------
def test_organizer_form_collects_stats_and_trains(launch_cli, seqs_recipe, one_torch_thread):
    stats = seqs_recipe / "stats_here"
    run_dir = launched(launch_cli, seqs_recipe, f"+stats_dir={stats}")
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (run_dir / "stats").exists()  # the config's stats_dir, not the run folder's
    train, valid = stats / "train", stats / "valid"
    assert (train / "stats_keys").read_text() == "feats\n"
    assert (valid / "stats_keys").read_text() == "feats\n"
    assert (train / "feats_shape").read_text() == shape_lines(range(10))
    assert (valid / "feats_shape").read_text() == shape_lines(range(5), offset=100)
    for directory, items in ((train, range(10)), (valid, range(100, 105))):
        with np.load(directory / "feats_stats.npz") as saved:
            count, total, squares = expected_stats(list(items))
            assert int(saved["count"]) == count
            np.testing.assert_allclose(saved["sum"], total)
            np.testing.assert_allclose(saved["sum_square"], squares)


def test_plain_datasets_with_iter_factory_null_use_the_run_folder(launch_cli, seqs_recipe,
                                                                   one_torch_thread):
    def plain(config: dict) -> None:  # the launcher's own form, ESPnet3's dataloader
        config["dataset"] = {"train": {"_target_": "src.seqs.Seqs", "size": 6},
                             "valid": {"_target_": "src.seqs.Seqs", "size": 3}}

    edit_config(seqs_recipe, plain)
    run_dir = launched(launch_cli, seqs_recipe)
    stats = run_dir / "stats"
    assert (stats / "train" / "feats_shape").read_text() == shape_lines(range(6))
    assert (stats / "valid" / "feats_shape").read_text() == shape_lines(range(3))
    assert not (stats / "feats_stats.npz").exists()  # one layout: ESPnet3's
    with np.load(stats / "train" / "feats_stats.npz") as train:
        assert int(train["count"]) == expected_stats(range(6))[0]


# ---- refused before launch ---------------------------------------------------------
def iter_factory(config: dict) -> None:
    config["dataloader"]["train"]["iter_factory"] = ITER_FACTORY


def multiple_iterator(config: dict) -> None:
    config["dataloader"]["valid"].update(multiple_iterator=True, num_shards=2)


def espnet_collate(config: dict) -> None:
    config["dataloader"]["collate_fn"]["_target_"] = "espnet2.train.collate_fn.CommonCollateFn"


@pytest.mark.skipif(espnet_available(), reason="espnet2 is installed: these are accepted")
@pytest.mark.parametrize("change,key", [
    (iter_factory, "dataloader.train.iter_factory"),
    (multiple_iterator, "dataloader.valid.multiple_iterator"),
    (espnet_collate, "dataloader.collate_fn._target_"),
])
def test_espnets_own_iterators_need_espnet(launch_cli, seqs_recipe, change, key):
    edit_config(seqs_recipe, change)
    line = rejected(launch_cli, seqs_recipe)
    assert f"key '{key}'" in line and "launcher[espnet]" in line, line


def unknown_entry_key(config: dict) -> None:
    config["dataset"]["train"][1]["datset"] = {}


def no_valid(config: dict) -> None:
    del config["dataset"]["valid"]


@pytest.mark.parametrize("change,key,words", [
    (unknown_entry_key, "dataset.train[1].datset", "unknown key"),
    (no_valid, "dataset.valid", "no valid"),
])
def test_a_wrong_organizer_entry_is_refused(launch_cli, seqs_recipe, change, key, words):
    edit_config(seqs_recipe, change)
    line = rejected(launch_cli, seqs_recipe)
    assert f"key '{key}'" in line and words in line, line
