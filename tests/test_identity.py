"""A run's identity comes from canonical values of the composed config, once."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from launcher.identity import canonical, fingerprint, identity_of, run_name
from launcher.layout import exp_root

CONFIG = OmegaConf.create({"optim": {"lr": 0.001}, "model": {"hidden": 64, "fail": False},
                           "stages": ["train"], "exp_root": "exp"})


def test_same_overrides_in_any_order_name_the_same_run():
    assert run_name(CONFIG, ["optim.lr=0.001", "model.hidden=64"]) == run_name(
        CONFIG, ["model.hidden=64", "optim.lr=0.001"])


@pytest.mark.parametrize("typed,value", [("optim.lr=1e-3", 0.001), ("model.fail=False", False),
                                         ("model.hidden=64.0", 64.0)])
def test_one_value_spelled_differently_names_one_run(typed, value):
    key = typed.split("=")[0]
    config = OmegaConf.merge(CONFIG, OmegaConf.from_dotlist([f"{key}={value}"]))
    canonical_spelling = f"{key}={canonical(value)}"
    assert run_name(config, [typed]) == run_name(config, [canonical_spelling])


def test_canonical_values():
    assert [canonical(v) for v in (1e-3, 1.0, 3, True, None, [1, 2.0], {"b": 1, "a": "x"})] \
        == ["0.001", "1", "3", "true", "null", "[1,2]", "{a:x,b:1}"]


def test_different_values_name_different_runs():
    other = OmegaConf.merge(CONFIG, {"optim": {"lr": 0.01}})
    assert run_name(CONFIG, ["optim.lr=0.001"]) != run_name(other, ["optim.lr=0.01"])


def test_where_and_how_to_run_do_not_change_the_run():
    base = run_name(CONFIG, ["optim.lr=0.001"])
    assert run_name(CONFIG, ["optim.lr=0.001", "stages=[evaluate]", "++exp_root=/x",
                             "hydra/launcher=slurm", "cluster=mine", "hydra.verbose=true",
                             "++requeue.max_requeues=5", "++run_identity.name=x"]) == base
    assert run_name(CONFIG, []) == "default"


def test_a_group_choice_is_named_by_its_option():
    name = run_name(CONFIG, ["model=conformer"], is_group=lambda key: key == "model")
    assert name.startswith("model=conformer-")


def test_hostile_values_become_a_single_safe_folder_name():
    name = run_name(CONFIG, ["+model.name='a b/../../$(rm -rf ~)\n'"])
    assert "/" not in name and " " not in name and "$" not in name and "\n" not in name
    assert not name.startswith(".")


def test_the_fingerprint_ignores_where_and_how_and_sees_what():
    where = OmegaConf.merge(CONFIG, {"stages": ["evaluate"], "exp_root": "/x",
                                     "run_identity": {"name": "n"}})
    what = OmegaConf.merge(CONFIG, {"model": {"hidden": 65}})
    assert fingerprint(where) == fingerprint(CONFIG) != fingerprint(what)
    assert identity_of(CONFIG, ["optim.lr=0.001"]).fingerprint == fingerprint(CONFIG)


def test_relative_exp_root_is_under_the_recipe(tmp_path: Path):
    assert exp_root(tmp_path, "exp") == tmp_path.resolve() / "exp"
    assert exp_root(tmp_path, None) == tmp_path.resolve() / "exp"
    assert exp_root(tmp_path, "/abs/where") == Path("/abs/where")


def test_a_run_alone_and_in_a_sweep_spelled_differently_is_one_run(launch_cli, toy_recipe,
                                                                   one_torch_thread):
    exp = toy_recipe / "exp"
    code, out, _ = launch_cli(toy_recipe, f"exp_root={exp}", "optim.lr=5e-2",
                              "+model.dropout=0.0", "trainer.max_epochs=1")
    assert code == 0
    (alone,) = [p for p in exp.iterdir() if p.name != "sweeps"]
    assert alone.name.startswith("model.dropout=0,optim.lr=0.05,trainer.max_epochs=1-")
    sweep = ["-m", "trainer.max_epochs=1", "optim.lr=0.05,0.06", "+model.dropout=0"]
    dry = launch_cli(toy_recipe, f"exp_root={exp}", "--dry-run", *sweep)[1]
    assert f"run directory: {alone}" in dry
    code, out, err = launch_cli(toy_recipe, f"exp_root={exp}", *sweep)
    assert code == 0, err
    assert out.count("already complete: not submitted again") == 1
    runs = sorted(p.name for p in exp.iterdir() if p.name != "sweeps")
    assert len(runs) == 2 and alone.name in runs
    assert "resuming from" not in (alone / "run.log").read_text()
