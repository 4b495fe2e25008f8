"""Planning a sweep: composed once per shape, checked once per shape, never less exact."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import edit_config

from launcher.components.recipe_package import recipe_package_name
from launcher.errors import ConfigError
from launcher.plan.overrides import expand_sweep
from launcher.plan.planning import plan
from launcher.plan.recipe import compose, compose_sweep, find_recipe


def test_a_sweep_over_values_composes_exactly_as_each_job_alone(toy_recipe):
    recipe = find_recipe(toy_recipe)
    jobs = expand_sweep(["optim.lr=0.1,0.2,0.3", "+extra=1,2", "seed=5"])
    assert len(jobs) == 6
    assert compose_sweep(recipe, jobs) == [compose(recipe, job) for job in jobs]


def test_a_sweep_over_config_groups_composes_each_job_from_the_files(toy_recipe):
    sizes = toy_recipe / "conf" / "size"
    sizes.mkdir()
    for name, hidden in (("small", 4), ("mid", 8), ("big", 32)):
        (sizes / f"{name}.yaml").write_text(f"hidden: {hidden}\n")
    recipe = find_recipe(toy_recipe)
    jobs = expand_sweep(["+size=small,mid,big"])
    configs = compose_sweep(recipe, jobs)
    assert [c.size.hidden for c in configs] == [4, 8, 32]


def test_a_config_group_with_no_folder_is_caught(toy_recipe):
    """A group registered in Hydra's ConfigStore looks like a value: the check of
    the last job sees the difference, and every job is composed from the files."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, hidden in (("small", 4), ("mid", 8), ("big", 32)):
        store.store(group="stored_size", name=name, node={"hidden": hidden})
    try:
        recipe = find_recipe(toy_recipe)
        jobs = expand_sweep(["+stored_size=small,mid,big"])
        assert [c.stored_size.hidden for c in compose_sweep(recipe, jobs)] == [4, 8, 32]
    finally:
        store.repo.pop("stored_size")


def test_a_bad_value_in_one_job_is_reported_as_composing_it_would(toy_recipe):
    recipe = find_recipe(toy_recipe)
    with pytest.raises(ConfigError) as caught:
        compose_sweep(recipe, [["optim.lr=0.1"], ["optim.lr=0.2"], ["optim.lrr=0.3"]])
    with pytest.raises(ConfigError) as alone:
        compose(recipe, ["optim.lrr=0.3"])
    assert str(caught.value) == str(alone.value)


def planned(recipe_dir: Path, *sweep: str) -> list:
    return plan(find_recipe(recipe_dir), [f"++exp_root={recipe_dir / 'exp'}", *sweep],
                multirun=True)


def new_launch(recipe_dir: Path) -> None:
    """Forget what this process imported, as a new `launch` would (each launch has a
    check cache of its own)."""
    package = recipe_package_name(recipe_dir)
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]


def test_the_classes_of_a_sweep_are_checked_once_and_remembered(toy_recipe, import_checks):
    assert len(planned(toy_recipe, "optim.lr=0.1,0.2,0.3")) == 3
    assert len(import_checks) == 1
    new_launch(toy_recipe)  # only what was written down counts
    planned(toy_recipe, "optim.lr=0.4,0.5")
    assert len(import_checks) == 1
    planned(toy_recipe, "model.hidden=4,16")  # the model's keys, not its values, count
    assert len(import_checks) == 1
    planned(toy_recipe, "trainer.max_epochs=1,3")  # Trainer options are checked as given
    assert len(import_checks) == 3


def test_a_launch_elsewhere_reuses_the_checks(toy_recipe, import_checks):
    """Where runs go is checked on every launch; it does not make the classes new."""
    planned(toy_recipe, "optim.lr=0.1,0.2")
    new_launch(toy_recipe)
    plan(find_recipe(toy_recipe), [f"++exp_root={toy_recipe / 'elsewhere'}", "optim.lr=0.1,0.2"],
         multirun=True)
    assert len(import_checks) == 1


def test_an_edit_to_the_recipe_code_is_checked_again(toy_recipe, import_checks):
    planned(toy_recipe, "optim.lr=0.1,0.2")
    model = toy_recipe / "src" / "model.py"
    model.write_text(model.read_text().replace("class Regressor", "class Renamed"))
    new_launch(toy_recipe)
    with pytest.raises(ConfigError, match="has no attribute 'Regressor'"):
        planned(toy_recipe, "optim.lr=0.1,0.2")
    assert len(import_checks) == 2


def test_a_changed_module_outside_the_recipe_is_checked_again(toy_recipe, import_checks,
                                                              tmp_path, monkeypatch):
    package = tmp_path / "site"
    package.mkdir()
    (package / "outside_optim.py").write_text(
        "from torch.optim import SGD\n\nclass MySGD(SGD):\n    pass\n")
    monkeypatch.syspath_prepend(str(package))
    edit_config(toy_recipe, lambda c: c["optim"].update(_target_="outside_optim.MySGD"))
    planned(toy_recipe, "optim.lr=0.1,0.2")
    new_launch(toy_recipe)
    planned(toy_recipe, "optim.lr=0.1,0.2")
    assert len(import_checks) == 1
    (package / "outside_optim.py").write_text(
        "from torch.optim import SGD\n\nclass MySGD(SGD):\n    '''changed'''\n")
    new_launch(toy_recipe)
    planned(toy_recipe, "optim.lr=0.1,0.2")
    assert len(import_checks) == 2


def test_a_refused_config_is_never_remembered(launch_cli, toy_recipe, import_checks):
    edit_config(toy_recipe, lambda c: c["trainer"].update(max_epochz=2))
    for _ in range(2):
        code, _, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}", "--dry-run")
        assert code == 2 and "trainer.max_epochz" in err
    assert len(import_checks) == 2
