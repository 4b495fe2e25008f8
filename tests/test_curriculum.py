"""Curriculum training (launcher.systems.curriculum): phases in their own folders, each starting
from the previous phase's final weights with its own settings, resumable in any phase."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import edit_config

from launcher.status_file import read_status

ROOT = Path(__file__).resolve().parents[1]
TONES = ROOT / "egs3" / "tones" / "asr1"
CHANCE_TER = 0.9
# 640 utterances in batches of 16: 2 epochs of short sequences, then 3 of long ones
SMALL_TONES = ["dataloader.batch_size=16", "dataset.train.num_utts=640",
               "dataset.valid.num_utts=64", "dataset.test.num_utts=100",
               "curriculum.1.trainer.max_epochs=3"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")

START_PROBE = '''
from pathlib import Path

import torch

from .probe import InterruptingProbe


class StartProbe(InterruptingProbe):
    """Saves the weights a phase starts training from, and the learning rate it uses."""

    def on_train_start(self):
        super().on_train_start()
        folder = Path(self.trainer.default_root_dir)
        if self.global_step == 0:
            torch.save(self.model.state_dict(), folder / "start.pt")
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        (folder / "lr.txt").write_text(str(lr))
'''


def curriculum(config: dict) -> None:
    config["system"] = {"_target_": "launcher.systems.curriculum.CurriculumSystem"}
    config["lightning_module"] = {"_target_": "src.start_probe.StartProbe"}
    config["curriculum"] = [
        {"name": "warmup", "trainer": {"max_epochs": 1}, "optim": {"lr": 0.05}},
        {"name": "main", "trainer": {"max_epochs": 3}, "optim": {"lr": 0.01},
         "dataset": {"train": {"seed": 7}}},
    ]


@pytest.fixture
def recipe(toy_recipe: Path) -> Path:
    (toy_recipe / "src" / "start_probe.py").write_text(START_PROBE)
    edit_config(toy_recipe, curriculum)
    return toy_recipe


def only_run_dir(exp: Path) -> Path:
    (run_dir,) = [p for p in exp.iterdir() if p.is_dir() and p.name != "sweeps"]
    return run_dir


def checkpoint_weights(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    return {k.removeprefix("model."): v for k, v in state.items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_second_phase_starts_from_the_first_phases_final_weights(launch_cli, recipe):
    code, _, err = launch_cli(recipe, f"exp_root={recipe / 'exp'}")
    assert code == 0, err
    run_dir = only_run_dir(recipe / "exp")
    warmup, main = run_dir / "phases" / "warmup", run_dir / "phases" / "main"
    final_warmup = torch.load(warmup / "final.pth")
    # the final weights are those of the warmup's last checkpoint ...
    assert same(final_warmup, checkpoint_weights(warmup / "checkpoints" / "last.ckpt"))
    # ... and exactly the weights the main phase started training from
    assert same(torch.load(main / "start.pt"), final_warmup)
    assert not same(torch.load(warmup / "start.pt"), final_warmup)
    # each phase ran with its own settings, in its own folder
    assert torch.load(warmup / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1
    assert torch.load(main / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 3
    assert float((warmup / "lr.txt").read_text()) == 0.05
    assert float((main / "lr.txt").read_text()) == 0.01
    for phase in (warmup, main):
        assert (phase / "metrics.csv").is_file()
        assert json.loads((phase / "phase.json").read_text())["state"] == "completed"
    assert json.loads((main / "phase.json").read_text())["started_from"] == str(
        warmup / "final.pth")
    assert read_status(run_dir)["state"] == "completed"


def test_interrupted_in_each_phase_resumes_there_and_ends_bitwise_equal(launch_cli, recipe):
    extra = ["+model.dropout=0.3", "++trainer.checkpoint_every_n_steps=1"]
    clean = recipe / "clean"
    assert launch_cli(recipe, f"exp_root={clean}", *extra)[0] == 0
    # warmup has 4 steps, main 12: stopped at step 2 of warmup, then at step 6 of main
    exp = recipe / "interrupted"
    args = [f"exp_root={exp}", *extra, "+interrupt_at=[2,6]"]
    codes = []
    for _ in range(3):
        codes.append(launch_cli(recipe, *args)[0])
        if len(codes) < 3:
            assert read_status(only_run_dir(exp))["state"] == "stopped"
    assert codes == [143, 143, 0]
    run_dir = only_run_dir(exp)
    log = (run_dir / "run.log").read_text()
    assert "phase warmup: resuming from" in log
    assert "phase warmup: already completed; skipped" in log
    assert "phase main: resuming from" in log
    assert read_status(run_dir)["state"] == "completed"
    weights = [json.loads((d / "probe.rank0.json").read_text())["weights_sha"]
               for d in (run_dir, only_run_dir(clean))]
    assert weights[0] == weights[1]


END_PROBE = '''
import os
import signal
from pathlib import Path

from .start_probe import StartProbe


class EndProbe(StartProbe):
    """Sends SIGTERM once, as the warmup phase's training ends: the signal arrives
    between the phases, outside any `fit`."""

    def on_train_end(self):
        super().on_train_end()
        marker = Path(self.config["run_dir"]) / "signalled_between_phases"
        if Path(self.trainer.default_root_dir).name == "warmup" and not marker.exists():
            marker.write_text("")
            os.kill(os.getpid(), signal.SIGTERM)
'''


def test_sigterm_between_phases_stops_before_the_next_one_and_resumes_there(launch_cli,
                                                                            recipe):
    assert launch_cli(recipe, f"exp_root={recipe / 'clean'}")[0] == 0
    (recipe / "src" / "end_probe.py").write_text(END_PROBE)
    edit_config(recipe, lambda c: c.update(lightning_module={"_target_": "src.end_probe.EndProbe"}))
    exp = recipe / "exp"
    code, _, err = launch_cli(recipe, f"exp_root={exp}")
    run_dir = only_run_dir(exp)
    assert code == 143 and "Traceback" not in err, err
    assert read_status(run_dir)["state"] == "stopped"
    assert "stopped before phase main by SIGTERM" in (run_dir / "run.log").read_text()
    assert json.loads((run_dir / "phases" / "warmup" / "phase.json").read_text())["state"] \
        == "completed"
    assert not (run_dir / "phases" / "main" / "checkpoints").exists()
    assert list(run_dir.rglob(".*.tmp")) == []
    assert launch_cli(recipe, f"exp_root={exp}")[0] == 0
    assert "phase warmup: already completed; skipped" in (run_dir / "run.log").read_text()
    assert read_status(run_dir)["state"] == "completed"
    finals = [torch.load(d / "phases" / "main" / "final.pth")
              for d in (run_dir, only_run_dir(recipe / "clean"))]
    assert same(*finals)


def test_a_phase_that_changes_devices_is_refused_before_training(launch_cli, recipe):
    edit_config(recipe, lambda c: c["curriculum"][1]["trainer"].update(devices=2))
    code, _, err = launch_cli(recipe, f"exp_root={recipe / 'exp'}")
    assert code == 2 and "curriculum[1].trainer.devices" in err, err
    assert not (recipe / "exp").exists(), "refused before anything is written"


@pytest.mark.slow
def test_tones_curriculum_learns_short_then_long_sequences(launch_cli, tmp_path):
    code, _, err = launch_cli(TONES, "--config-name", "curriculum", f"exp_root={tmp_path}",
                              *SMALL_TONES)
    assert code == 0, err
    run_dir = only_run_dir(tmp_path)
    check_tones_curriculum(run_dir)


def check_tones_curriculum(run_dir: Path) -> dict:
    short, long = run_dir / "phases" / "short", run_dir / "phases" / "long"
    assert json.loads((long / "phase.json").read_text())["started_from"] == str(
        short / "final.pth")
    report = json.loads((run_dir / "evaluate.json").read_text())
    assert report["weights"].startswith(str(long))
    assert report["metrics"]["test/ter"] < 0.4 * CHANCE_TER, report
    config = (run_dir / "config.yaml").read_text()
    assert "max_digits: 2" in config and "launcher.systems.curriculum.CurriculumSystem" in config
    return report["metrics"]


@pytest.mark.slow
@pytest.mark.slurm
def test_tones_curriculum_with_the_cluster_trainer_on_slurm(slurm_cluster, launch_cli,
                                                            tmp_path):
    code, out, err = launch_cli(
        TONES, "--config-name", "curriculum", "hydra/launcher=slurm", "--wait",
        f"exp_root={tmp_path}", "+trainer._target_=src.trainer.ClusterTrainer", *SMALL_TONES)
    assert code == 0, out + err
    run_dir = only_run_dir(tmp_path)
    check_tones_curriculum(run_dir)
    for phase in ("short", "long"):
        info = json.loads((run_dir / "phases" / phase / "cluster.json").read_text())
        (rank,) = info["ranks"]
        assert rank["node"] in ("n1", "n2") and rank["slurm_job_id"], rank
        assert rank["torch_threads"] <= rank["cpus"], "no more threads than allocated CPUs"
        assert (run_dir / "phases" / phase / "throughput.csv").is_file()
