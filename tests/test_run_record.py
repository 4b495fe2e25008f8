"""Each run records what produced it (record.json, git.diff); `launch show` prints it and
`launch diff` compares two runs, without torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from launcher.bookkeeping import Damaged
from launcher.run_record import launch_facts, read_record, record_attempt

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
SLURM_VARS = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
              "SLURM_RESTART_COUNT", "SLURM_JOB_NODELIST")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                           "user.email=t@example.com", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit, the recipe in its subfolder `recipe`."""
    root = tmp_path / "repo"
    (root / "recipe" / "src").mkdir(parents=True)
    (root / "recipe" / "src" / "model.py").write_text("HIDDEN = 8\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


@pytest.fixture
def no_slurm(monkeypatch):
    for name in SLURM_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@needs_git
def test_launch_facts_of_a_clean_then_changed_git_work_tree(repo):
    facts, diff = launch_facts(repo / "recipe", ["launch", "recipe", "optim.lr=0.1"])
    assert facts["command"] == "launch recipe optim.lr=0.1"
    assert facts["git"] == {"commit": git(repo, "rev-parse", "HEAD"), "branch": "main",
                            "dirty": False, "root": str(repo.resolve())}
    assert diff == ""
    assert facts["packages"]["hydra-core"] and "torch" in facts["packages"]
    assert facts["python"] and facts["launcher"] and facts["launched"][4] == "-"

    (repo / "recipe" / "src" / "model.py").write_text("HIDDEN = 16\n")
    (repo / "recipe" / "src" / "new.py").write_text("x = 1\n")
    facts, diff = launch_facts(repo / "recipe", ["launch", "recipe"])
    assert facts["git"]["dirty"] is True
    assert "-HIDDEN = 8" in diff and "+HIDDEN = 16" in diff
    assert "src/new.py" in diff and "x = 1" not in diff  # untracked: named only


def test_launch_facts_outside_git_or_without_git(tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    facts, diff = launch_facts(plain, ["launch", "plain"])
    assert facts["git"] is None and diff == ""
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))  # no git at all
    facts, diff = launch_facts(plain, ["launch", "plain"])
    assert facts["git"] is None and diff == "" and facts["command"] == "launch plain"


def facts(command: str, commit: str, **extra) -> dict:
    return {"command": command, "cwd": "/home/u", "launched": "2026-01-31T12:00:00",
            "launcher": "0.1.0", "python": "3.11.7",
            "packages": {"torch": "2.4.0", "hydra-core": "1.3.2", "lightning": None},
            "git": {"commit": commit, "branch": "main", "dirty": True, "root": "/src"},
            **extra}


def two_attempts(run_dir: Path, monkeypatch) -> None:
    """A first SLURM attempt, then a relaunch with other code that is requeued once."""
    run_dir.mkdir(parents=True)
    monkeypatch.setenv("SLURM_JOB_ID", "101")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "100")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "n[1-2]")
    record_attempt(run_dir, facts("launch r optim.lr=0.1", "aaa111"), "diff one\n")
    monkeypatch.setenv("SLURM_JOB_ID", "202")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    code = {"digest": "d1", "files": {"recipe/src/model.py": "f00"}}
    record_attempt(run_dir, facts("launch r optim.lr=0.1 -m", "bbb222", code=code), "diff two\n")


def test_every_attempt_is_recorded_with_the_latest_launch(tmp_path, no_slurm):
    run_dir = tmp_path / "run"
    two_attempts(run_dir, no_slurm)
    record = read_record(run_dir)
    first, second = record["attempts"]
    assert (first["slurm_job_id"], first["slurm_array"], first["restart"]) == ("101", "100_1", 0)
    assert (second["slurm_job_id"], second["slurm_array"], second["restart"]) == ("202", None, 1)
    assert first["nodes"] == "n[1-2]" and first["gpus"] == [] and first["host"]
    assert first["command"] == "launch r optim.lr=0.1"
    assert record["command"] == "launch r optim.lr=0.1 -m"  # the latest launch's facts
    assert record["git"]["commit"] == "bbb222" and record["git"]["diff_file"] == "git.diff"
    assert record["code"] == {"digest": "d1", "files": {"recipe/src/model.py": "f00"}}
    assert [x["commit"] for x in record["launches"]] == ["aaa111", "bbb222"]
    assert (run_dir / "git.diff").read_text() == "diff two\n"
    # A requeue of the same launch adds an attempt, not a launch; a clean tree, no diff.
    clean = facts("launch r optim.lr=0.1 -m", "bbb222", code={"digest": "d1"})
    record_attempt(run_dir, clean, "")
    record = read_record(run_dir)
    assert len(record["attempts"]) == 3 and len(record["launches"]) == 2
    assert "diff_file" not in record["git"] and not (run_dir / "git.diff").exists()


def test_a_damaged_record_is_set_aside_and_the_run_goes_on(tmp_path, no_slurm):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "record.json").write_text('{"command": "launch r", "attem')
    with pytest.raises(Damaged, match=r"record\.json: truncated JSON"):
        read_record(run_dir)
    record_attempt(run_dir, facts("launch r", "aaa111"), None)
    assert len(read_record(run_dir)["attempts"]) == 1
    assert (run_dir / "record.json.damaged").read_text() == '{"command": "launch r", "attem'
    assert not list(run_dir.glob(".*.tmp"))


def test_show_prints_command_commit_versions_and_each_attempt(tmp_path, no_slurm, launch_cli):
    run_dir = tmp_path / "run"
    two_attempts(run_dir, no_slurm)
    code, out, err = launch_cli("show", run_dir)
    assert code == 0, err
    assert "command:   launch r optim.lr=0.1 -m" in out
    assert "bbb222 on main" in out and f"dirty: uncommitted changes in {run_dir}/git.diff" in out
    assert "torch 2.4.0" in out and "lightning" not in out.replace("pytorch-lightning", "")
    assert "digest d1, 1 files" in out
    attempts = out.split("attempts:  2\n")[1].splitlines()
    assert "job 101 (array 100_1), restart 0" in attempts[0] and "nodes n[1-2]" in attempts[0]
    assert "job 202, restart 1" in attempts[1]
    assert "aaa111" in out  # the earlier launch


def run_folder(path: Path, config: dict, record: dict | None) -> Path:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    if record is not None:
        (path / "record.json").write_text(json.dumps(record))
    return path


def config(lr: float, **trainer) -> dict:
    return {"stages": ["train"], "optim": {"lr": lr, "_target_": "torch.optim.SGD"},
            "trainer": {"max_epochs": 2, **trainer}, "callbacks": [{"patience": 3}],
            "run_dir": f"/exp/{lr}", "exp_dir": f"/exp/{lr}",
            "run_identity": {"name": str(lr), "fingerprint": str(lr)}}


def record(commit: str, torch: str, files: dict) -> dict:
    return {**facts("launch r", commit), "packages": {"torch": torch, "numpy": "2.0"},
            "code": {"digest": commit[:2], "files": files}, "attempts": [{"host": commit}]}


def test_diff_lists_the_config_keys_and_record_fields_that_differ(tmp_path, launch_cli):
    a = run_folder(tmp_path / "a", config(0.1), record("aaa", "2.4.0", {"m.py": "1", "x.py": "2"}))
    b = run_folder(tmp_path / "b", config(0.01, devices=2),
                   record("bbb", "2.5.0", {"m.py": "1", "x.py": "3", "y.py": "4"}))
    code, out, err = launch_cli("diff", a, b)
    assert code == 0, err
    assert out.splitlines() == [
        f"A: {a}", f"B: {b}",
        "config (config.yaml):",
        "  optim.lr: 0.1 -> 0.01",
        "  trainer.devices: (absent) -> 2",
        "record (record.json):",
        "  code.digest: aa -> bb",
        "  git.commit: aaa -> bbb",
        "  packages.torch: 2.4.0 -> 2.5.0",
        "  code file x.py: 2 -> 3",
        "  code file y.py: (absent) -> 4",
    ]
    assert launch_cli("diff", a, a)[:2] == (0, "no differences\n")


@pytest.mark.parametrize("command", [["show", "{x}"], ["diff", "{run}", "{x}"]])
def test_a_folder_that_is_no_run_is_one_line_exit_2(tmp_path, launch_cli, command):
    run = run_folder(tmp_path / "run", config(0.1), None)
    (tmp_path / "x").mkdir()
    code, out, err = launch_cli(*(c.format(x=tmp_path / "x", run=run) for c in command))
    assert code == 2 and out == "" and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert f"{tmp_path / 'x'} is not a run folder" in line and "give a run folder" in line


def test_show_without_a_record_or_with_a_damaged_one_is_one_line(tmp_path, launch_cli):
    run = run_folder(tmp_path / "run", config(0.1), None)
    code, _, err = launch_cli("show", run)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "has no record.json" in err
    (run / "record.json").write_text("[1, 2]")
    code, _, err = launch_cli("show", run)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{run / 'record.json'}: expected a JSON object" in err


def test_show_and_diff_do_not_import_torch(tmp_path, no_slurm):
    two_attempts(tmp_path / "run", no_slurm)
    (tmp_path / "run" / "config.yaml").write_text("a: 1\n")
    code = ("import sys\nfrom launcher.cli import main\n"
            "assert main(['show', sys.argv[1]]) == 0\n"
            "assert main(['diff', sys.argv[1], sys.argv[1]]) == 0\n"
            "assert 'torch' not in sys.modules and 'hydra' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "job 202" in result.stdout and "no differences" in result.stdout


@pytest.mark.slow
def test_a_real_run_records_its_launch_and_attempt(launch_cli, toy_recipe, one_torch_thread,
                                                   no_slurm):
    exp = toy_recipe / "exp"
    code, _, err = launch_cli(toy_recipe, f"exp_root={exp}", "trainer.max_epochs=1")
    assert code == 0, err
    (run_dir,) = [p for p in exp.iterdir() if (p / "config.yaml").is_file()]
    record = json.loads((run_dir / "record.json").read_text())
    assert record["command"] == f"launch {toy_recipe} exp_root={exp} trainer.max_epochs=1"
    assert len(record["attempts"]) == 1 and record["attempts"][0]["slurm_job_id"] is None
    assert record["packages"]["torch"] and record["code"]["digest"]
    code, out, _ = launch_cli("show", run_dir)
    assert code == 0 and record["command"] in out and "attempts:  1" in out
