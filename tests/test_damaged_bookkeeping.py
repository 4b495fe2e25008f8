"""Follow-up commands on damaged bookkeeping: show what can be shown, name the
file and the problem, never a traceback."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.executors.registry import SubmittedJob, Sweep, remember, state_dir
from launcher.followups import slurm_queries as scheduler
from launcher.status_file import write_status

BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"
NOT_UTF8 = b"state: \xff\xfe\xfd"
GOOD = {
    "status.json": json.dumps({"state": "completed", "started": "2024-01-31T12:00:00",
                               "updated": "2024-01-31T12:05:00"}),
    "progress.json": json.dumps({"epoch": 3, "max_epochs": 3, "step": 30}),
    "metrics.csv": "epoch,step,valid/loss\n0,9,0.9\n1,19,0.5\n2,29,0.7\n",
    "config.yaml": "best_model_criterion: [[valid/loss, 1, min]]\n",
}
# file kind -> damage -> (bytes written, the problem `launch` names)
DAMAGES = {
    "status.json": {
        "truncated": (GOOD["status.json"][:20], "truncated JSON"),
        "empty": ("", "empty file"),
        "binary": (BINARY, "binary data, not text"),
        "not UTF-8": (NOT_UTF8, "not UTF-8 text"),
        "missing field": ('{"started": "2024-01-31T12:00:00"}', "missing field 'state'"),
        "not an object": ("[1, 2]", "expected a JSON object, found a list"),
    },
    "progress.json": {
        "truncated": (GOOD["progress.json"][:25], "truncated JSON"),
        "empty": ("", "empty file"),
        "binary": (BINARY, "binary data, not text"),
        "missing field": ('{"epoch": 1}', "missing field 'max_epochs'"),
    },
    "metrics.csv": {
        "truncated": (GOOD["metrics.csv"][:-4], "last line cut short (line 4)"),
        "empty": ("", "empty file"),
        "binary": (BINARY, "binary data, not text"),
        "not a number": ("epoch,step,valid/loss\n0,9,0.9\n1,19,abc\n",
                         "line 3: 'abc' is not a number"),
    },
    "config.yaml": {
        "truncated": (GOOD["config.yaml"][:30], "invalid YAML"),
        "empty": ("", "empty file"),
        "binary": (BINARY, "binary data, not text"),
        "not a mapping": ("- a\n- b\n", "expected a mapping, found a list"),
    },
}
CASES = [(kind, damage) for kind, damages in DAMAGES.items() for damage in damages]


@pytest.fixture(autouse=True)
def no_scheduler(monkeypatch):
    """These sweeps ran locally; a SLURM job is asked about only where a test says."""
    monkeypatch.setattr(scheduler, "query", lambda ids: {})


def make_sweep(folder: Path, count: int = 3, backend: str = "local") -> Path:
    """A finished sweep of `count` runs with every bookkeeping file in place."""
    sweep_dir = folder / "sweeps" / "s1"
    sweep_dir.mkdir(parents=True)
    jobs = []
    for i in range(count):
        run_dir = folder / f"run{i}"
        run_dir.mkdir()
        for name, text in GOOD.items():
            (run_dir / name).write_text(text)
        (run_dir / "run.log").write_text(f"log of run {i}\n")
        jobs.append(SubmittedJob(i, [f"optim.lr={i}"], str(run_dir), job_id=f"j{i}",
                                 state="COMPLETED"))
    Sweep(str(sweep_dir), backend, "/recipe", "config", [], jobs=jobs).save()
    return sweep_dir


def damage(path: Path, content: str | bytes) -> None:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def table(out: str) -> dict[str, str]:
    return {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}


def assert_one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2, out + err
    assert "Traceback" not in out + err
    (line,) = err.strip().splitlines()
    assert line.startswith("launch: error: ")
    for needle in needles:
        assert needle in line


@pytest.mark.parametrize(("kind", "how"), CASES)
def test_status_marks_the_damaged_run_and_shows_the_rest(launch_cli, tmp_path, kind, how):
    sweep_dir = make_sweep(tmp_path)
    content, problem = DAMAGES[kind][how]
    damage(tmp_path / "run1" / kind, content)
    code, out, err = launch_cli("status", sweep_dir)
    assert code == 0, err
    assert "Traceback" not in out + err
    lines = table(out)
    assert set(lines) == {"j0", "j1", "j2"}
    assert f"{tmp_path / 'run1' / kind}: {problem}" in lines["j1"]
    for good in ("j0", "j2"):
        assert "completed" in lines[good] and "3/3 s30" in lines[good] and "0.5" in lines[good]
    if kind == "status.json":
        assert "  damaged  " in lines["j1"]
    else:
        assert "  completed  " in lines["j1"]


@pytest.mark.parametrize(("kind", "how"), CASES)
def test_report_writes_every_run_with_the_problem(launch_cli, tmp_path, kind, how):
    sweep_dir = make_sweep(tmp_path)
    content, problem = DAMAGES[kind][how]
    damage(tmp_path / "run1" / kind, content)
    code, out, err = launch_cli("report", sweep_dir)
    assert code == 0, err
    assert "Traceback" not in out + err
    with open(sweep_dir / "report.csv") as file:
        records = {r["job_id"]: r for r in csv.DictReader(file)}
    assert sorted(records) == ["j0", "j1", "j2"]
    assert problem in records["j1"]["note"] and kind in records["j1"]["note"]
    assert records["j0"]["best valid/loss"] == "0.5" and records["j0"]["note"] == ""
    assert (sweep_dir / "curves.png").is_file()


@pytest.mark.parametrize("how", list(DAMAGES["status.json"]))
def test_retry_skips_a_run_it_cannot_read_and_says_so(launch_cli, tmp_path, how):
    sweep_dir = make_sweep(tmp_path)
    content, problem = DAMAGES["status.json"][how]
    damage(tmp_path / "run1" / "status.json", content)
    before = (sweep_dir / "jobs.json").read_text()
    code, out, err = launch_cli("retry", sweep_dir)
    assert code == 0, err
    assert "Traceback" not in out + err
    assert f"skipped job j1, cannot read its bookkeeping: {tmp_path / 'run1'}/status.json: " \
           f"{problem}" in out
    assert "nothing to retry" in out
    assert (sweep_dir / "jobs.json").read_text() == before


REGISTRY_DAMAGES = {
    "truncated": (lambda text: text[:len(text) // 2], "truncated JSON"),
    "empty": (lambda text: "", "empty file"),
    "binary": (lambda text: BINARY, "binary data, not text"),
    "missing jobs": (lambda text: json.dumps({k: v for k, v in json.loads(text).items()
                                              if k != "jobs"}), "missing field 'jobs'"),
    "jobs not a list": (lambda text: json.dumps({**json.loads(text), "jobs": {}}),
                        "field 'jobs' should be a list, not a mapping"),
}


@pytest.mark.parametrize("how", list(REGISTRY_DAMAGES))
@pytest.mark.parametrize("command", ["status", "report", "retry", "logs", "cancel"])
def test_damaged_jobs_json_of_the_sweep_asked_for_is_one_line(launch_cli, tmp_path, how,
                                                              command):
    sweep_dir = make_sweep(tmp_path)
    registry = sweep_dir / "jobs.json"
    change, problem = REGISTRY_DAMAGES[how]
    damage(registry, change(registry.read_text()))
    code, out, err = launch_cli(command, sweep_dir)
    assert_one_line_error(code, out, err, f"{registry}: {problem}")


def test_the_latest_sweep_with_a_damaged_jobs_json_is_one_line(launch_cli, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("LAUNCHER_STATE_DIR", str(tmp_path / "state"))
    sweep_dir = make_sweep(tmp_path)
    remember(sweep_dir)
    damage(sweep_dir / "jobs.json", '{"backend": "local", "jobs": [')
    code, out, err = launch_cli("status")
    assert_one_line_error(code, out, err, "jobs.json: truncated JSON")


def edit_registry(sweep_dir: Path, change) -> None:
    path = sweep_dir / "jobs.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_job_entries_missing_fields_get_defaults_or_are_marked(launch_cli, tmp_path):
    sweep_dir = make_sweep(tmp_path, count=4)

    def change(data):
        for name in ("index", "job_id", "state", "stdout", "stderr", "submitted", "value"):
            del data["jobs"][0][name]      # all have defaults
        del data["jobs"][1]["run_dir"]     # no default: which run?
        data["jobs"][2] = "garbage"
        data["jobs"][3]["overrides"] = "optim.lr=3"
        del data["config_name"]
    edit_registry(sweep_dir, change)
    registry = sweep_dir / "jobs.json"
    saved = json.loads(registry.read_text())["jobs"]

    code, out, err = launch_cli("status", sweep_dir)
    assert code == 0, err
    lines = out.splitlines()[2:]
    assert "optim.lr=0" in lines[0] and "completed" in lines[0] and "3/3 s30" in lines[0]
    assert lines[1].startswith("j1 ") and "  damaged  " in lines[1]
    assert f"{registry}: jobs[1]: missing field 'run_dir'" in lines[1]
    assert f"{registry}: jobs[2] is a string, not an object" in lines[2]
    assert "jobs[3]: field 'overrides' should be a list of strings, not a string" in lines[3]

    code, out, err = launch_cli("report", sweep_dir)
    assert code == 0, err
    code, out, err = launch_cli("retry", sweep_dir)
    assert code == 0, err
    assert out.count("skipped job") == 3

    Sweep.load(sweep_dir).save()
    jobs = json.loads(registry.read_text())["jobs"]
    assert jobs[1:] == saved[1:]  # entries that could not be read are kept as they were
    assert jobs[0]["index"] == 0 and jobs[0]["job_id"] == "" and "problem" not in jobs[0]

    code, out, err = launch_cli("logs", tmp_path / "run0")
    assert code == 0 and out == "log of run 0\n"


def test_retry_without_a_recipe_names_the_missing_field(launch_cli, tmp_path):
    sweep_dir = make_sweep(tmp_path)
    edit_registry(sweep_dir, lambda data: data.pop("recipe"))
    code, out, err = launch_cli("retry", sweep_dir)
    assert_one_line_error(code, out, err, "jobs.json: missing field 'recipe'")
    code, out, err = launch_cli("status", sweep_dir)
    assert code == 0 and "(local): 3 completed" in out


def test_a_run_folder_that_does_not_exist_is_missing(launch_cli, tmp_path):
    sweep_dir = make_sweep(tmp_path)
    for name in list((tmp_path / "run2").iterdir()):
        name.unlink()
    (tmp_path / "run2").rmdir()
    code, out, err = launch_cli("status", sweep_dir)
    assert code == 0, err
    line = table(out)["j2"]
    assert "  missing  " in line and "run folder does not exist" in line
    assert "queued" not in out
    code, out, err = launch_cli("logs", tmp_path / "run2")
    assert_one_line_error(code, out, err, "run2")
    code, out, err = launch_cli("report", sweep_dir)
    assert code == 0, err


def test_a_slurm_job_unknown_to_the_scheduler_without_folder_is_missing(launch_cli, tmp_path):
    sweep_dir = make_sweep(tmp_path, backend="slurm")
    os.rename(tmp_path / "run0", tmp_path / "elsewhere")
    code, out, _ = launch_cli("status", sweep_dir)
    assert code == 0 and "  missing  " in table(out)["j0"]


def test_a_local_job_not_started_yet_is_still_queued(launch_cli, tmp_path):
    sweep_dir = make_sweep(tmp_path)
    edit_registry(sweep_dir, lambda data: data["jobs"][2].update(job_id="",
                                                                  run_dir=str(tmp_path / "new")))
    code, out, _ = launch_cli("status", sweep_dir)
    assert code == 0 and "  queued  " in out.splitlines()[-1]


def test_status_fields_with_wrong_values_are_noted_and_the_rest_shown(launch_cli, tmp_path):
    sweep_dir = make_sweep(tmp_path)
    (tmp_path / "run1" / "status.json").write_text(json.dumps(
        {"state": "failed", "started": "yesterday"}))
    code, out, _ = launch_cli("status", sweep_dir)
    line = table(out)["j1"]
    assert code == 0 and "  failed  " in line
    assert "status.json: field 'started' is not a time" in line


def test_a_damaged_sweep_index_line_is_skipped(launch_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("LAUNCHER_STATE_DIR", str(tmp_path / "state"))
    sweep_dir = make_sweep(tmp_path)
    remember(sweep_dir)
    index = state_dir() / "sweeps.txt"
    with open(index, "ab") as file:
        file.write(b"\x00\xff\x80garbage\n" + b"\xff\xfe garbage\n")
        file.write(str(tmp_path / "gone").encode() + b"\nnot/a/path\n")
        file.write(str(sweep_dir).encode()[:10])  # cut short
    remember(sweep_dir)  # the cut line does not swallow this one
    code, out, err = launch_cli("status")
    assert code == 0, err
    assert out.startswith(f"sweep {sweep_dir} (local): 3 completed")
    assert err.strip() == f"launch: note: {index}: 2 line(s) that are not text, left out"
    code, out, err = launch_cli("status", tmp_path / "run1")  # a run folder, searched for
    assert code == 0 and "j1" in out

    index.write_bytes(BINARY)
    code, out, err = launch_cli("status")
    assert code == 2 and "Traceback" not in out + err
    assert "no sweep has been launched" in err


def test_an_unreadable_old_sweep_does_not_hide_a_run_in_another(launch_cli, tmp_path,
                                                                monkeypatch):
    monkeypatch.setenv("LAUNCHER_STATE_DIR", str(tmp_path / "state"))
    good = make_sweep(tmp_path / "a")
    bad = make_sweep(tmp_path / "b")
    remember(good)
    remember(bad)
    damage(bad / "jobs.json", BINARY)
    code, out, err = launch_cli("status", tmp_path / "a" / "run1")
    assert code == 0 and table(out)["j1"].split()[2] == "completed"
    (tmp_path / "not_a_run").mkdir()
    code, out, err = launch_cli("status", tmp_path / "not_a_run")
    assert_one_line_error(code, out, err, f"{bad}/jobs.json: binary data")


def test_follow_ends_when_the_state_cannot_be_read(tmp_path):
    """`logs -f` stops at a run whose status is damaged instead of waiting forever."""
    sweep_dir = make_sweep(tmp_path)
    damage(tmp_path / "run1" / "status.json", BINARY)
    code = "import sys\nfrom launcher.cli import main\nsys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, "logs", "-f", str(tmp_path / "run1")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "log of run 1\n" and sweep_dir.is_dir()


def test_a_damaged_status_is_an_error_for_the_job_not_a_traceback(tmp_path):
    """The job side reads status.json too; damage there is a user error naming it."""
    from launcher.bookkeeping import Damaged
    from launcher.status_file import read_status

    (tmp_path / "status.json").write_bytes(BINARY)
    with pytest.raises(Damaged, match=r"status\.json: binary data, not text"):
        read_status(tmp_path)
    (tmp_path / "fresh").mkdir()
    assert read_status(tmp_path / "fresh") == {}
    write_status(tmp_path / "fresh", "running")
    assert read_status(tmp_path / "fresh")["state"] == "running"
