"""A sweep over values is planned from its first job, checked in full, and is planned
exactly as job by job: the same identities, run folders and job configs, and a bad
value anywhere refused with the error its job alone gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import edit_config, rejected

from launcher.errors import ConfigError
from launcher.plan.check_cache import user_cache
from launcher.plan.overrides import expand_sweep, with_launcher_keys
from launcher.plan.planning import Later, _planned, plan
from launcher.plan.planning_values import number
from launcher.plan.recipe import compose, find_recipe

LRS = [f"{(i + 1) * 1e-4:.4f}" for i in range(300)]


def planned(recipe_dir: Path, *overrides: str) -> list:
    return plan(find_recipe(recipe_dir),
                with_launcher_keys([f"exp_root={recipe_dir / 'exp'}", *overrides]), True)


def job_by_job(recipe_dir: Path, *overrides: str) -> list:
    """Each job composed from the files and checked in full, as every job once was."""
    recipe = find_recipe(recipe_dir)
    task = with_launcher_keys([f"exp_root={recipe_dir / 'exp'}", *overrides])
    cache = user_cache()
    return [_planned(recipe, compose(recipe, job), job, cache) for job in expand_sweep(task)]


def refusal(recipe_dir: Path, *overrides: str) -> str:
    with pytest.raises(ConfigError) as caught:
        planned(recipe_dir, *overrides)
    return str(caught.value)


def assert_same_plans(fast: list, slow: list) -> None:
    assert len(fast) == len(slow)
    for one, other in zip(fast, slow, strict=True):
        assert one.overrides == other.overrides
        assert one.identity == other.identity
        assert one.run_dir == other.run_dir
        assert one.composed == other.composed
        assert one.config == other.config


def test_a_grid_over_values_plans_as_job_by_job(toy_recipe):
    grid = ("optim.lr=0.1,0.2,1e-3,0.05", "model.hidden=4,8,16", "seed=1,2")
    fast = planned(toy_recipe, *grid)
    assert all(isinstance(job._config, Later) for job in fast[1:]), "checked once"
    assert_same_plans(fast, job_by_job(toy_recipe, *grid))


def test_values_of_another_type_are_checked_in_full(toy_recipe):
    sweep = ("optim.lr=0.1,0.2,1,0.5,3",)
    fast = planned(toy_recipe, *sweep)
    assert [isinstance(job._config, Later) for job in fast] == [False, True, False, True, False]
    assert_same_plans(fast, job_by_job(toy_recipe, *sweep))


def test_an_interpolation_that_reads_a_swept_value_makes_each_job_checked(toy_recipe):
    edit_config(toy_recipe, lambda c: c["dataset"]["train"].update(size="${model.hidden}"))
    sweep = ("model.hidden=4,8,16,32",)
    fast = planned(toy_recipe, *sweep)
    assert not any(isinstance(job._config, Later) for job in fast)
    assert_same_plans(fast, job_by_job(toy_recipe, *sweep))


def test_a_run_folder_in_an_interpolation_makes_each_job_checked(toy_recipe):
    """Statistics in each run's own folder differ from job to job."""
    edit_config(toy_recipe, lambda c: c.update(data_dir="${run_dir}/stats/feats.npz"))
    sweep = ("optim.lr=0.1,0.2,0.3",)
    assert "data_dir is" in refusal(toy_recipe, *sweep)
    fast = planned(toy_recipe, *sweep, "stages=[collect_stats,train]")
    assert_same_plans(fast, job_by_job(toy_recipe, *sweep, "stages=[collect_stats,train]"))


@pytest.mark.parametrize("bad", ["abc", "${nowhere.lr}", "[1,2]", "null"])
def test_a_bad_value_mid_sweep_is_refused_as_its_job_alone(toy_recipe, bad):
    values = [*LRS[:150], f"'{bad}'" if bad == "abc" else bad, *LRS[150:]]
    with pytest.raises(ConfigError) as alone:
        planned(toy_recipe, f"optim.lr={values[150]}")
    message = refusal(toy_recipe, "optim.lr=" + ",".join(values))
    assert message == str(alone.value)
    assert "optim.lr" in message


def test_a_missing_value_mid_sweep_is_planned_as_its_job_alone(toy_recipe):
    """`???` is no error of planning (the class's default applies); it is planned as the
    job alone is, from the files."""
    values = [*LRS[:150], "???", *LRS[150:]]
    job = planned(toy_recipe, "optim.lr=" + ",".join(values))[150]
    alone = planned(toy_recipe, "optim.lr=???")[0]
    assert not isinstance(job._config, Later)
    assert (job.identity, job.run_dir, job.config) == (alone.identity, alone.run_dir,
                                                       alone.config)


def test_a_bad_number_for_the_model_is_refused_mid_sweep(toy_recipe):
    values = [str(h) for h in range(2, 302)]
    values[200] = "2.5"  # the model's `hidden` is an int
    with pytest.raises(ConfigError) as alone:
        planned(toy_recipe, "model.hidden=2.5")
    message = refusal(toy_recipe, "model.hidden=" + ",".join(values))
    assert message == str(alone.value) and "model.hidden=2.5" in message


def test_statistics_missing_from_one_jobs_folder_refuse_that_job(toy_recipe):
    """A path into the stats folder of the run folder of job 150 only (the config file's
    values do not name the run)."""
    name = planned(toy_recipe, f"optim.lr={LRS[150]}")[0].run_dir
    edit_config(toy_recipe, lambda c: c.update(data_dir=f"{name}/stats/feats.npz"))
    message = refusal(toy_recipe, "optim.lr=" + ",".join(LRS))
    with pytest.raises(ConfigError) as alone:
        planned(toy_recipe, f"optim.lr={LRS[150]}")
    assert message == str(alone.value)
    assert "trains on statistics nobody has collected: data_dir" in message
    assert f"optim.lr={LRS[150]}" in message


def test_a_refused_sweep_writes_nothing(launch_cli, toy_recipe):
    values = [*LRS[:100], "'abc'", *LRS[100:]]
    line = rejected(launch_cli, toy_recipe, "-m", "optim.lr=" + ",".join(values))
    assert "override 'optim.lr='abc''" in line and "is not a number" in line


def test_the_dry_run_shows_the_first_job_in_full_and_the_others_values(launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    code, out, err = launch_cli(toy_recipe, "--dry-run", f"exp_root={exp}", "-m",
                                "optim.lr=0.1,0.2,0.3", "seed=1,2")
    assert code == 0, err
    assert out.count("=== job ") == 6 and out.count("config:") == 1
    assert "model             src.model.Regressor" in out
    assert "5 job(s) below differ from job 0 only in the values shown" in out
    assert "=== job 5: optim.lr=0.3 seed=2" in out or "=== job 5: seed=2 optim.lr=0.3" in out
    assert "values: optim.lr: 0.3, seed: 2" in out
    assert not exp.exists()


@pytest.mark.parametrize("text", ["1", "-1", "+3", "0", "0.1", "1.", ".5", "1e-5", "1E5",
                                  "-2.5e+3", "true", "False", "TRUE", "01", "1_000", "inf",
                                  "nan", "1e", "abc", "0x10", "00.5", "0.0001", "1e-05"])
def test_numbers_are_read_as_hydra_reads_them(text):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        hydras = OverridesParser.create().parse_override(f"a={text}").value()
    except Exception:
        hydras = None
    ours = number(text)
    assert ours is None or (type(ours) is type(hydras) and ours == hydras)
