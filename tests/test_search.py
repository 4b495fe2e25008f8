"""Asynchronous Optuna searches: refused before anything is queued when wrong, trials
pulled by slots, pruned, failed, reported; a search stopped mid-trial continues with
no trial lost or run twice."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, rejected

from launcher.search.spec import SearchSpec

TOY_DATA = ["trainer.max_epochs=3"]


def sweep_of(exp: Path) -> Path:
    """The latest launch of a search."""
    return sorted(p for p in (exp / "sweeps").iterdir() if (p / "search.json").is_file())[-1]


def spec_of(exp: Path) -> SearchSpec:
    return SearchSpec.read(sweep_of(exp))


def study_of(spec: SearchSpec):
    import optuna

    from launcher.search.study import storage_of

    return optuna.load_study(study_name=spec.study, storage=storage_of(spec))


def states(spec: SearchSpec) -> dict[int, str]:
    return {t.number: t.state.name for t in study_of(spec).get_trials()}


# ---- refused before anything is written ------------------------------------------------

@pytest.mark.parametrize("overrides,expected", [
    (["search.n_trials=0", "optim.lr=interval(0.01,0.1)"], "key 'search.n_trials'"),
    (["search.n_trials=4"], "a search needs parameters"),
    (["search.n_trials=4", "optim.lr=interval(0.1,0.01)"], "interval(0.1, 0.01) is empty"),
    (["search.n_trials=4", "optim.lr=tag(log,interval(0,0.1))"], "must start above 0"),
    (["search.n_trials=4", "search.sampler=bogus", "optim.lr=interval(0.01,0.1)"],
     "unknown sampler 'bogus'"),
    (["search.n_trials=4", "search.pruner={name:median,patience:2}",
      "optim.lr=interval(0.01,0.1)"], "MedianPruner takes no argument 'patience'"),
    (["search.n_trials=4", "search.sampler=grid", "optim.lr=interval(0.01,0.1)"],
     "the grid sampler needs a list of values"),
    (["search.n_trials=4", "search.metric=[valid/loss,train/loss]", "search.pruner=median",
      "optim.lr=interval(0.01,0.1)"], "cannot prune a search with several metrics"),
    (["search.n_trials=4", "search.direction=up", "optim.lr=interval(0.01,0.1)"],
     "key 'search.direction'"),
    (["search.n_trials=4", "search.trials=4", "optim.lr=interval(0.01,0.1)"],
     "unknown search setting 'trials'"),
    (["search.n_trials=4", "resources.cpus_per_task=choice(1,2)"],
     "key 'search.params.resources.cpus_per_task'"),
    (["search.n_trials=4", "optim.lrr=interval(0.01,0.1)"], "optim.lrr"),
    (["search.n_trials=4", "search.study=../elsewhere", "optim.lr=interval(0.01,0.1)"],
     "key 'search.study'"),
    (["search.n_trials=4", "model.hidden=choice([1,2],[3])"], "is not a number, a string"),
])
def test_a_wrong_search_is_refused_in_one_line(launch_cli, toy_recipe, overrides, expected):
    line = rejected(launch_cli, toy_recipe, *overrides)
    assert expected in line, line


def test_the_spellings_are_hydra_optuna_sweepers():
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    from launcher.search.space import parse_params

    space = parse_params({"a": "choice(1, x, true)", "b": "tag(log, interval(1e-4, 1e-1))",
                          "c": "tag(int, interval(2, 9))", "d": "range(1, 7, 2)",
                          "e": "interval(0, 1)", "f": "4,8"})
    assert space["a"] == CategoricalDistribution([1, "x", True])
    assert space["b"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert space["c"] == IntDistribution(2, 9)
    assert space["d"] == CategoricalDistribution([1, 3, 5])
    assert space["e"] == FloatDistribution(0.0, 1.0)
    assert space["f"] == CategoricalDistribution([4, 8])


# ---- which trial a slot runs next ---------------------------------------------------------

def _spec(tmp_path: Path, n_trials: int) -> SearchSpec:
    return SearchSpec(study="s", dir=str(tmp_path / "study"), n_trials=n_trials, slots=2,
                      metrics=["valid/loss"], directions=["minimize"],
                      params={"x": "interval(0, 1)"}, overrides=[], grace_s=600)


def test_slots_racing_for_trials_ask_exactly_n_trials(tmp_path):
    from launcher.search.study import next_trial, open_study

    spec = _spec(tmp_path, 9)
    claimed: list[int] = []

    def slot(k: int) -> None:
        study = open_study(spec, str(k))
        owner = {"sweep": "a", "slot": k, "host": "elsewhere", "pid": 1}
        while (claim := next_trial(study, spec, owner)) is not None:
            claimed.append(claim.number)
            study.tell(claim.trial, 0.5)

    threads = [threading.Thread(target=slot, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == list(range(9))
    assert len(study_of(spec).get_trials()) == 9


def test_a_trial_is_taken_over_only_when_its_slot_is_gone(tmp_path):
    from launcher.liveness import process_start_ticks
    from launcher.search.study import next_trial, open_study, write_claim

    spec = _spec(tmp_path, 3)
    study = open_study(spec)
    me = {"host": os.uname().nodename, "pid": os.getpid(),
          "pid_start": process_start_ticks(os.getpid())}
    live = next_trial(study, spec, {"sweep": "a", "slot": 0, **me})  # a live slot's
    requeued = next_trial(study, spec, {"sweep": "b", "slot": 0, "host": "n9", "pid": 7})
    dead = next_trial(study, spec, {"sweep": "a", "slot": 1, "host": me["host"],
                                    "pid": 2 ** 22 + 1})
    assert (live.number, requeued.number, dead.number) == (0, 1, 2)
    # A new slot of another launch: gets the dead slot's trial, never the live one's.
    other = next_trial(study, spec, {"sweep": "c", "slot": 0, **me})
    assert (other.number, other.resumed, other.params) == (2, True, dead.params)
    assert next_trial(study, spec, {"sweep": "c", "slot": 1, "host": "n9", "pid": 8}) is None
    # The requeued slot (same sweep, same slot) gets its own trial back at once.
    back = next_trial(study, spec, {"sweep": "b", "slot": 0, "host": "n3", "pid": 9})
    assert (back.number, back.resumed, back.params) == (1, True, requeued.params)
    # A claim silent for longer than grace_s is free too.
    write_claim(spec.claims / "0.json", {"sweep": "a", "slot": 0, "host": "n9", "pid": 1})
    old = time.time() - spec.grace_s - 5
    os.utime(spec.claims / "0.json", (old, old))
    assert next_trial(study, spec, {"sweep": "d", "slot": 0, "host": "n9", "pid": 3}).number == 0


# ---- real searches, local executor ----------------------------------------------------------

@pytest.mark.slow
def test_a_local_search_runs_fails_and_reports_its_trials(launch_cli, toy_recipe, tmp_path,
                                                          one_torch_thread):
    """A grid of six trials on two slots; the two with hidden=4 fail by design."""
    exp = tmp_path / "exp"
    code, out, err = launch_cli(
        toy_recipe, f"exp_root={exp}", *TOY_DATA, "search.n_trials=6", "search.slots=2",
        "search.sampler=grid", "model.hidden=choice(4,8,16)", "optim.lr=choice(0.02,0.1)",
        "+model.fail_if_hidden=4")
    assert code == 0, out + err
    spec = spec_of(exp)
    study = study_of(spec)
    trials = study.get_trials()
    assert len(trials) == 6
    assert sorted((t.params["model.hidden"], t.params["optim.lr"]) for t in trials) == \
        sorted((h, lr) for h in (4, 8, 16) for lr in (0.02, 0.1))  # each grid point once
    for t in trials:
        run_dir = spec.trial_dir(t.number)
        config = (run_dir / "config.yaml").read_text()
        assert f"hidden: {t.params['model.hidden']}" in config
        assert t.state.name == ("FAIL" if t.params["model.hidden"] == 4 else "COMPLETE")
        if t.state.name == "COMPLETE":
            rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
            logged = [float(r["valid/loss"]) for r in rows if r.get("valid/loss")]
            assert t.value == pytest.approx(min(logged))
        else:
            assert t.user_attrs["error"] == "RuntimeError: deliberate failure (model.fail=true)"
    best = min((t for t in trials if t.value is not None), key=lambda t: t.value)
    assert "6 of 6 trials: 4 complete, 2 failed" in out
    assert f"best so far: trial {best.number}: valid/loss {best.value:.6g}" in out
    said = "".join(p.read_text() for p in exp.glob("sweeps/*/slots/*/run.log"))
    assert sorted(int(n) for n in re.findall(r"trial (\d+) (?:complete|failed)", said)) == \
        list(range(6))

    sweep = sweep_of(exp)
    code, out, err = launch_cli("status", str(sweep))
    assert code == 0, err
    assert re.search(rf"^{best.number}\s+complete\s+valid/loss", out, re.M), out
    assert out.count(" failed ") >= 2
    probe = ("import sys; from launcher.cli import main; main(['status', sys.argv[1]]); "
             "assert 'torch' not in sys.modules, 'status imported torch'")
    done = subprocess.run([sys.executable, "-c", probe, str(sweep)], capture_output=True,
                          text=True)
    assert done.returncode == 0 and "best so far" in done.stdout, done.stderr
    code, out, err = launch_cli("report", str(sweep))
    assert code == 0, err
    for name in ("trials.csv", "history.png", "importance.png", "parallel.png"):
        assert (sweep / name).is_file() and f"wrote {sweep / name}" in out
    rows = list(csv.DictReader((sweep / "trials.csv").open()))
    assert [r["state"] for r in rows].count("complete") == 4
    assert f"model.hidden={best.params['model.hidden']}" in out.split("rerun it")[1]


@pytest.mark.slow
def test_a_pruned_trial_stops_early_keeps_its_checkpoint_and_frees_its_slot(
        launch_cli, toy_recipe, tmp_path, one_torch_thread):
    exp = tmp_path / "exp"
    code, out, err = launch_cli(
        toy_recipe, f"exp_root={exp}", "trainer.max_epochs=5", "search.n_trials=3",
        "search.slots=1", "search.pruner={name:threshold,upper:0.0,n_warmup_steps:1}",
        "optim.lr=tag(log,interval(0.01,0.1))")
    assert code == 0, out + err
    spec = spec_of(exp)
    assert set(states(spec).values()) == {"PRUNED"} and len(states(spec)) == 3
    for number in range(3):
        run_dir = spec.trial_dir(number)
        epochs = {r["epoch"] for r in csv.DictReader((run_dir / "metrics.csv").open())}
        assert epochs == {"0", "1"}  # stopped at the end of the epoch it was pruned in
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        status = json.loads((run_dir / "status.json").read_text())
        assert status["state"] == "stopped" and "pruned after epoch 1" in status["error"]
        assert "trial pruned by the search after epoch 1" in (run_dir / "run.log").read_text()
    assert "3 of 3 trials: 3 pruned" in out


def _start(recipe: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "launcher.cli", str(recipe), *overrides],
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_checkpoints(exp: Path, count: int, timeout_s: float = 240) -> list[Path]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = sorted({p.parents[1] for p in exp.glob("searches/*/trials/*/checkpoints/*.ckpt")})
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {count} trial checkpoint(s) in {timeout_s} s")


def assert_each_trial_ran_once(exp: Path, n_trials: int) -> dict[int, list[str]]:
    """Every trial complete once, in the study and in the slots' logs; the attempts of
    each (from its record.json)."""
    spec = spec_of(exp)
    assert states(spec) == dict.fromkeys(range(n_trials), "COMPLETE")
    said = "".join(p.read_text() for p in exp.glob("sweeps/*/slots/*/run.log"))
    completes = sorted(int(n) for n in re.findall(r"trial (\d+) complete", said))
    assert completes == list(range(n_trials)), said
    attempts = {}
    for number in range(n_trials):
        run_dir = spec.trial_dir(number)
        epochs = [r["epoch"] for r in csv.DictReader((run_dir / "metrics.csv").open())
                  if r.get("valid/loss")]
        assert epochs == ["0", "1", "2"], (number, epochs)  # no epoch lost or trained twice
        record = json.loads((run_dir / "record.json").read_text())
        attempts[number] = [a.get("slurm_array") or a.get("host") for a in record["attempts"]]
    return attempts


@pytest.mark.slow
def test_a_stopped_local_search_continues_with_no_trial_lost_or_run_twice(toy_recipe,
                                                                           tmp_path):
    exp = tmp_path / "exp"
    command = [f"exp_root={exp}", *TOY_DATA, "+model.step_sleep_s=0.3", "search.n_trials=4",
               "search.slots=2", "optim.lr=tag(log,interval(0.01,0.1))"]
    process = _start(toy_recipe, *command)
    wait_for_checkpoints(exp, 1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    running = [n for n, s in states(spec_of(exp)).items() if s == "RUNNING"]
    assert running, "the stop should land mid-trial"
    done = subprocess.run([sys.executable, "-m", "launcher.cli", str(toy_recipe), *command],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    attempts = assert_each_trial_ran_once(exp, 4)
    for number in running:
        assert len(attempts[number]) == 2  # resumed, from its checkpoint
        log = (spec_of(exp).trial_dir(number) / "run.log").read_text()
        assert "taken over from a slot that stopped" in log and "resuming from" in log


# ---- on SLURM: a requeued slot gets its trial back; a cancelled search continues -----------

def running_trial(exp: Path) -> tuple[Path, dict] | None:
    """A trial that has a checkpoint and is still running, and its claim."""
    for ckpt in exp.glob("searches/*/trials/*/checkpoints/*.ckpt"):
        run_dir = ckpt.parents[1]
        claim = run_dir.parents[1] / "claims" / f"{int(run_dir.name)}.json"
        try:
            return run_dir, json.loads(claim.read_text())
        except (OSError, ValueError):
            continue
    return None


@pytest.mark.slurm
@pytest.mark.slow
def test_a_search_on_slurm_survives_a_requeue_and_a_cancel(launch_cli, toy_recipe,
                                                           slurm_cluster):
    from test_slurm_resume import wait_for, warn

    exp = toy_recipe / "exp"
    command = [f"exp_root={exp}", "hydra/launcher=slurm", *TOY_DATA, "+model.step_sleep_s=0.8",
               "++trainer.progress_interval_s=0", "search.n_trials=4", "search.slots=2",
               "optim.lr=tag(log,interval(0.01,0.1))"]
    code, out, err = launch_cli(toy_recipe, *command)
    assert code == 0, out + err
    slots = {int(j["run_dir"].rsplit("/", 1)[1]): j["job_id"] for j in
             json.loads((sweep_of(exp) / "jobs.json").read_text())["jobs"]}
    first, claim = wait_for("a running trial with a checkpoint", lambda: running_trial(exp),
                            timeout=180)
    warn(slots[claim["slot"]])  # the time-limit warning: checkpoint, requeue
    wait_for("the requeued slot to resume its trial", lambda: "taken over from a slot" in
             (first / "run.log").read_text(), timeout=180)
    wait_for_checkpoints(exp, 2, timeout_s=180)
    array = slots[0].split("_")[0]
    subprocess.run(["scancel", array], check=True)
    wait_for("the cancelled slots to end", lambda: array not in subprocess.run(
        ["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout, timeout=120)
    interrupted = [n for n, s in states(spec_of(exp)).items() if s == "RUNNING"]
    code, out, err = launch_cli(toy_recipe, *command, "--wait")
    assert code == 0, out + err
    assert "4 of 4 trials: 4 complete" in out
    attempts = assert_each_trial_ran_once(exp, 4)
    # Resumed by the requeued slot, or by the other one if it was free first.
    assert attempts[int(first.name)][0] == slots[claim["slot"]]
    assert len(attempts[int(first.name)]) >= 2
    for number in interrupted:
        assert len(attempts[number]) >= 2


@pytest.mark.slurm
@pytest.mark.slow
def test_two_launches_of_one_search_share_its_trials(launch_cli, toy_recipe, slurm_cluster):
    from test_slurm_resume import wait_for

    exp = toy_recipe / "exp"
    command = [f"exp_root={exp}", "hydra/launcher=slurm", *TOY_DATA, "+model.step_sleep_s=0.3",
               "search.n_trials=4", "search.slots=1", "optim.lr=tag(log,interval(0.01,0.1))"]
    code, out, err = launch_cli(toy_recipe, *command)
    assert code == 0, out + err
    code, out, err = launch_cli(toy_recipe, *command, "--wait")
    assert code == 0, out + err
    array = json.loads(sorted((exp / "sweeps").glob("*/jobs.json"))[0].read_text())["jobs"][0]
    wait_for("the first launch's slot to end", lambda: array["job_id"] not in subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True).stdout, timeout=120)
    assert_each_trial_ran_once(exp, 4)
    by_slot = [re.findall(r"trial (\d+) complete", p.read_text())
               for p in sorted(exp.glob("sweeps/*/slots/0/run.log"))]
    assert len(by_slot) == 2 and all(by_slot), by_slot  # both launches ran trials


def test_the_documented_search_block_is_accepted(launch_cli, toy_recipe):
    import yaml
    from conftest import edit_config

    text = (ROOT / "docs" / "sweeps.md").read_text()
    block = re.search(r"\n(    search:\n(?:    .*\n|\n(?=    ))+)", text).group(1)
    documented = yaml.safe_load("\n".join(line[4:] for line in block.splitlines()))
    edit_config(toy_recipe, lambda config: config.update(documented))
    code, out, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}", "--dry-run")
    assert code == 0, out + err
    assert "32 trials, 4 at a time, minimize valid/loss; sampler tpe, pruner median; over " \
           "optim.lr=tag(log, interval(1e-4, 1e-1)), model.hidden=choice(64, 128, 256)" in out


@pytest.mark.parametrize("text,problem", [
    ("", "empty file"), ("{", "truncated JSON"),
    ('{"study": "s", "dir": "/x", "n_trials": 3, "metrics": ["m"]}', "missing field 'slots'"),
    ('{"study": "s", "dir": "/x", "n_trials": 3, "slots": true, "metrics": ["m"], '
     '"directions": ["minimize"], "params": {}, "overrides": []}',
     "field 'slots' should be a whole number, not bool"),
    ('{"study": "s", "dir": "/x", "n_trials": 3, "slots": 1, "metrics": ["m"], '
     '"directions": [], "params": {}, "overrides": []}', "differ in length"),
])
def test_a_damaged_search_file_is_named_with_its_problem(tmp_path, text, problem):
    from launcher.bookkeeping import Damaged

    (tmp_path / "search.json").write_text(text)
    with pytest.raises(Damaged, match=re.escape(problem)) as raised:
        SearchSpec.read(tmp_path)
    assert str(tmp_path / "search.json") in str(raised.value)


@pytest.mark.slow
def test_a_search_with_two_metrics_keeps_its_pareto_front(launch_cli, toy_recipe, tmp_path,
                                                          one_torch_thread):
    exp = tmp_path / "exp"
    code, out, err = launch_cli(
        toy_recipe, f"exp_root={exp}", "trainer.max_epochs=1", "search.n_trials=3",
        "search.slots=1", "search.metric=[valid/loss,train/loss]",
        "search.direction=[minimize,minimize]", "search.sampler={name:nsga2,seed:0}",
        "optim.lr=tag(log,interval(0.01,0.1))")
    assert code == 0, out + err
    trials = study_of(spec_of(exp)).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert all(len(t.values) == 2 for t in trials)
    front = [t for t in trials if not any(
        all(a <= b for a, b in zip(o.values, t.values, strict=True)) and o.values != t.values
        for o in trials)]
    shown = re.findall(r"on the Pareto front so far: trial (\d+)", out)
    assert sorted(map(int, shown)) == sorted(t.number for t in front)
    code, out, err = launch_cli("report", str(sweep_of(exp)))
    assert code == 0, err
    assert (sweep_of(exp) / "pareto.png").is_file()
