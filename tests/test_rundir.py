"""Run directories are deterministic, safe and independent of override order."""

from pathlib import Path

from launcher.rundir import run_dir, run_name


def test_same_overrides_in_any_order_name_the_same_run():
    assert run_name(["optim.lr=0.1", "model.hidden=64"]) == run_name(
        ["model.hidden=64", "optim.lr=0.1"])


def test_different_values_name_different_runs():
    assert run_name(["optim.lr=0.1"]) != run_name(["optim.lr=0.01"])


def test_where_and_how_to_run_do_not_change_the_run():
    base = run_name(["optim.lr=0.1"])
    assert run_name(["optim.lr=0.1", "stages=[evaluate]", "++exp_root=/x",
                     "hydra/launcher=slurm", "cluster=mine", "hydra.verbose=true"]) == base
    assert run_name([]) == "default"


def test_hostile_values_become_a_single_safe_folder_name():
    name = run_name(["model.name='a b/../../$(rm -rf ~)\n'"])
    assert "/" not in name and " " not in name and "$" not in name and "\n" not in name
    assert not name.startswith(".")


def test_relative_exp_root_is_under_the_recipe(tmp_path: Path):
    assert run_dir(tmp_path, "exp", []) == tmp_path.resolve() / "exp" / "default"
    assert run_dir(tmp_path, "/abs/where", ["a=1"]).parent == Path("/abs/where")
