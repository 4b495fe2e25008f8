"""Jobs run the code they were submitted with: the snapshot, and no silent resume by
other code."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from launcher.snapshot.files import code_of, local_packages

VERSION = "\n# version\nRegressor.VERSION = {!r}\n"


def set_version(recipe: Path, version: str) -> None:
    """The model's code says which version it is; each model built logs it (the toy
    Regressor logs its class's VERSION when it has one)."""
    model = recipe / "src" / "model.py"
    text = model.read_text().split("\n# version\n")[0]
    model.write_text(text + VERSION.format(version))
    for name in [n for n in sys.modules if n.startswith("_recipe_")]:
        del sys.modules[name]  # a new `launch` process would import it afresh


def versions(run_dir: Path) -> list[str]:
    return re.findall(r"code version (\w+)", (run_dir / "run.log").read_text())


def only_run(exp: Path, *excluded: str) -> Path:
    (run,) = [p for p in exp.iterdir()
              if p.is_dir() and p.name != "sweeps" and p.name not in excluded]
    return run


# ---- which files are the code ---------------------------------------------------------
def test_the_code_is_the_recipe_and_the_local_packages_it_imports(tmp_path, toy_recipe,
                                                                  monkeypatch):
    lib = tmp_path / "lib"
    (lib / "mylocal").mkdir(parents=True)
    (lib / "mylocal" / "__init__.py").write_text("import numpy\nfrom mydeps import x\n")
    (lib / "mylocal" / "__pycache__").mkdir()
    (lib / "mylocal" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"x")
    (lib / "mydeps.py").write_text("x = 1\n")
    (lib / "bytarget").mkdir()
    (lib / "bytarget" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(lib))
    (toy_recipe / "src" / "uses.py").write_text("import mylocal\nimport os, json\n")
    code = code_of(toy_recipe, toy_recipe / "conf", [{"m": {"_target_": "bytarget.Net"}}])
    names = {f.name for f in code.files}
    assert {"recipe/conf/config.yaml", "recipe/src/model.py", "recipe/src/uses.py",
            "lib/mylocal/__init__.py", "lib/mydeps.py", "lib/bytarget/__init__.py"} <= names
    assert not any("__pycache__" in n for n in names)
    assert set(code.packages) == {"mylocal", "mydeps", "bytarget"}  # numpy is installed
    assert set(code.manifest()) == {n for n in names if n.endswith(".py")}


def test_installed_standard_and_the_launcher_itself_are_not_copied():
    assert local_packages(["numpy", "torch", "os", "json", "launcher", "src", "nosuch"]) == {}


# ---- the snapshot, what the dry run says ---------------------------------------------
def test_dry_run_says_what_is_copied(launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    code, out, err = launch_cli(toy_recipe, f"exp_root={exp}", "-m", "seed=1,2",
                                "trainer.max_epochs=1", "--dry-run")
    assert code == 0, err
    assert re.search(r"code snapshot: \d+ files, \d+ KiB -> .*/sweeps/.*/code", out)
    assert not exp.exists()


def test_a_job_imports_the_recipe_and_local_packages_from_the_snapshot(
        launch_cli, toy_recipe, tmp_path, monkeypatch, one_torch_thread):
    lib = tmp_path / "lib"
    (lib / "mylocal").mkdir(parents=True)
    (lib / "mylocal" / "__init__.py").write_text("WHERE = __file__\n")
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.setenv("PYTHONPATH", str(lib))  # where the jobs would find it too
    model = toy_recipe / "src" / "model.py"
    model.write_text(model.read_text() + "\nimport mylocal\n\n"
                     "Regressor.VERSION = mylocal.WHERE + ',' + __file__\n")
    exp = toy_recipe / "exp"
    code, _out, err = launch_cli(toy_recipe, f"exp_root={exp}", "-m", "seed=1",
                                "trainer.max_epochs=1")
    assert code == 0, err
    (sweep,) = (exp / "sweeps").iterdir()
    about = json.loads((sweep / "code" / "snapshot.json").read_text())
    assert about["recipe_dir"] == str(toy_recipe.resolve())
    assert about["packages"] == {"mylocal": str(lib / "mylocal")} and about["files"] >= 4
    assert (sweep / "code" / "recipe" / "src" / "model.py").read_text() == model.read_text()
    assert not (sweep / "code" / "recipe" / "exp").exists()  # runs stay in the recipe's exp/
    where = re.findall(r"code version (\S+)", (only_run(exp) / "run.log").read_text())
    assert where == [f"{sweep}/code/lib/mylocal/__init__.py,"
                     f"{sweep}/code/recipe/src/model.py"]


def test_snapshot_false_copies_nothing(launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    code, out, err = launch_cli(toy_recipe, f"exp_root={exp}", "-m", "seed=1,2",
                                "snapshot=false", "--dry-run")
    assert code == 0, err
    assert "code: imported from the recipe folder as the job starts (no snapshot)" in out


# ---- a run is not resumed by other code unless asked --------------------------------
def test_changed_code_is_not_resumed_silently(launch_cli, toy_recipe, one_torch_thread):
    from conftest import edit_config

    def epochs(n):
        edit_config(toy_recipe, lambda c: c["trainer"].update(max_epochs=n))

    exp = toy_recipe / "exp"
    set_version(toy_recipe, "A")
    epochs(1)
    code, _out, err = launch_cli(toy_recipe, f"exp_root={exp}")
    assert code == 0, err
    run = only_run(exp)
    set_version(toy_recipe, "B")
    epochs(2)  # a config change continues the run; the code change is what is refused
    code, _out, err = launch_cli(toy_recipe, f"exp_root={exp}")
    assert code == 2 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert f"run {run} has checkpoints made by other code (src/model.py changed)" in line
    assert "resume=force" in line and "resume=false" in line
    assert versions(run) == ["A"]
    code, _out, err = launch_cli(toy_recipe, f"exp_root={exp}", "resume=force")
    assert code == 0, err
    assert versions(run) == ["A", "B"]
    assert "resuming from" in (run / "run.log").read_text()
    # The same code again: resumed without being asked.
    epochs(3)
    code, _out, err = launch_cli(toy_recipe, f"exp_root={exp}")
    assert code == 0, err
    assert versions(run) == ["A", "B", "B"]
    record = json.loads((run / "record.json").read_text())
    assert len(record["attempts"]) == 3 and record["code"]["snapshot"] == ""


def test_resume_takes_three_values(launch_cli, toy_recipe):
    from conftest import rejected

    line = rejected(launch_cli, toy_recipe, "resume=maybe")
    assert "resume='maybe' is not a choice" in line and "resume=force" in line


# ---- on SLURM: queued and requeued jobs run the submitted code ----------------------
@pytest.mark.slurm
@pytest.mark.slow
def test_queued_and_requeued_jobs_run_the_submitted_code(launch_cli, toy_recipe,
                                                         slurm_cluster):
    from test_slurm_resume import PROBE, at_step, state_is, warn

    exp = toy_recipe / "exp"
    set_version(toy_recipe, "A")
    slow = [PROBE, "hydra/launcher=slurm", "hydra.launcher.max_parallel=1",
            "+model.step_sleep_s=0.3", "trainer.max_epochs=1",
            "++trainer.progress_interval_s=0", "++trainer.checkpoint_every_n_steps=1"]
    code, out, err = launch_cli(toy_recipe, f"exp_root={exp}", "-m", "seed=1,2", *slow)
    assert code == 0, out + err
    set_version(toy_recipe, "B")  # edited while both jobs wait in the queue
    (registry,) = (exp / "sweeps").glob("*/jobs.json")
    first, second = json.loads(registry.read_text())["jobs"]
    run1, run2 = Path(first["run_dir"]), Path(second["run_dir"])
    at_step(run1, 2)
    warn(first["job_id"])
    state_is(run1, "requeued", requeues=1)
    for run in (run1, run2):
        state_is(run, "completed")
    assert versions(run1) == ["A", "A"]  # the first attempt, and the requeued one
    assert versions(run2) == ["A"]  # queued while the code was edited
    attempts = json.loads((run1 / "record.json").read_text())["attempts"]
    assert [a["restart"] for a in attempts] == [0, 1]  # the record follows the requeue
    assert {a["slurm_array"] for a in attempts} == {first["job_id"]}  # as in jobs.json
    code, out, err = launch_cli(toy_recipe, f"exp_root={exp}", "seed=3", "--wait",
                                *slow)
    assert code == 0, out + err
    assert versions(only_run(exp, run1.name, run2.name)) == ["B"]


def test_snapshot_of_a_retry_is_the_first_launch_s(toy_recipe, tmp_path):
    """`launch retry` runs the code the runs were launched with, not the edited one."""
    from launcher.launch import launch
    from launcher.snapshot.take import take

    exp = toy_recipe / "exp"
    sweep = exp / "sweeps" / "first"
    take(code_of(toy_recipe, toy_recipe / "conf"), sweep)
    text = launch(toy_recipe, [f"exp_root={exp}", "seed=1", "trainer.max_epochs=1"],
                  multirun=True, dry_run=True, code_from=sweep)
    assert f"code: the snapshot {sweep / 'code'}, as the runs were first launched" in text


def test_a_package_of_another_environment_on_the_path_is_installed_not_local(tmp_path,
                                                                             monkeypatch):
    """A site-packages folder added by a `.pth` file or PYTHONPATH is not the user's code."""
    other = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "otherpkg"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("")
    local = tmp_path / "mine" / "mypkg"
    local.mkdir(parents=True)
    (local / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(other.parent))
    monkeypatch.syspath_prepend(str(local.parent))
    found = local_packages(["otherpkg", "mypkg"])
    assert list(found) == ["mypkg"]
