"""The command line: help without torch, resumes continue the metrics history."""

import csv
import subprocess
import sys

from conftest import edit_config


def test_help_answers_without_importing_torch():
    code = ("import sys\nfrom launcher.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\nprint('TORCH' if 'torch' in sys.modules else 'NO')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "launch RECIPE" in result.stdout and "examples:" in result.stdout
    assert result.stdout.strip().endswith("NO")


def test_running_again_resumes_and_keeps_the_metrics_history(launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    edit_config(toy_recipe, lambda c: c["trainer"].update(max_epochs=1))
    assert launch_cli(toy_recipe, f"exp_root={exp}")[0] == 0
    edit_config(toy_recipe, lambda c: c["trainer"].update(max_epochs=2))
    assert launch_cli(toy_recipe, f"exp_root={exp}")[0] == 0
    run_dir = exp / "default"
    assert "resuming from" in (run_dir / "run.log").read_text()
    with open(run_dir / "metrics.csv") as f:
        epochs = {row["epoch"] for row in csv.DictReader(f) if row.get("valid/loss")}
    assert epochs == {"0", "1"}


def test_a_finished_run_is_not_trained_again(launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    assert launch_cli(toy_recipe, f"exp_root={exp}")[0] == 0
    log = exp / "default" / "run.log"
    before = log.read_text()
    code, out, _ = launch_cli(toy_recipe, f"exp_root={exp}", "stages=[train]")
    assert code == 0 and "already complete: not submitted again" in out
    assert log.read_text() == before


def test_resume_false_starts_over_and_keeps_the_old_run(launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    assert launch_cli(toy_recipe, f"exp_root={exp}")[0] == 0
    code, out, _ = launch_cli(toy_recipe, f"exp_root={exp}", "resume=false")
    assert code == 0 and "resume=false: moved the previous run to" in out
    old = [p for p in exp.iterdir() if p.name.startswith("default.old-")]
    assert len(old) == 1 and (old[0] / "checkpoints" / "last.ckpt").is_file()
    assert "resuming from" not in (exp / "default" / "run.log").read_text()
