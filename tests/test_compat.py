"""The private upstream behaviour `launcher/compat/` relies on, checked against the
installed Hydra, submitit and Lightning. A failure names what changed and where the
launcher uses it; pyproject.toml bounds the versions these tests have seen."""

from __future__ import annotations

import inspect
import random
from importlib import metadata

import pytest
import torch


def changed(library: str, what: str, module: str) -> str:
    return (f"{library} {metadata.version(library)} changed {what}; "
            f"adapt launcher/compat/{module}.py (and its bound in pyproject.toml)")


# ---- Hydra -----------------------------------------------------------------------
def test_hydra_grid_jobs_are_what_its_sweeper_hands_a_launcher():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from launcher.compat.hydra import grid_jobs

    parsed = OverridesParser.create().parse_overrides(["+a=1", "b=1e-3,2", "~c"])
    assert grid_jobs(parsed) == [["+a=1", "b=0.001", "~c=null"], ["+a=1", "b=2", "~c=null"]], \
        changed("hydra-core", "BasicSweeper.split_arguments", "hydra")


def test_hydra_applies_value_overrides_to_a_composed_config():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from launcher.compat.hydra import apply_value_overrides

    config = OmegaConf.create({"optim": {"lr": 0.1}})
    apply_value_overrides(OverridesParser.create().parse_overrides(["++optim.lr=0.2"]), config)
    assert config.optim.lr == 0.2, changed("hydra-core", "_apply_overrides_to_config", "hydra")


def test_hydra_makes_an_app_for_a_config_folder(tmp_path):
    from hydra.core.global_hydra import GlobalHydra

    from launcher.compat.hydra import main_hydra

    try:
        app = main_hydra(tmp_path, task_name="run")
        assert callable(app.run) and callable(app.multirun), \
            changed("hydra-core", "Hydra.create_main_hydra2", "hydra")
    finally:
        GlobalHydra.instance().clear()


# ---- submitit ----------------------------------------------------------------------
def test_submitit_writes_the_batch_script_of_an_array(tmp_path):
    import submitit

    from launcher.compat.submitit import sbatch_text

    executor = submitit.SlurmExecutor(folder=str(tmp_path / "%j"))
    executor.update_parameters(time=5, array_parallelism=2)
    text = sbatch_text(executor, 3)
    assert "#SBATCH --array=0-2%2" in text and "submitit.core._submit" in text, \
        changed("submitit", "_make_sbatch_string", "submitit")


def test_submitit_jobs_wait_for_their_result_by_a_timeout_we_can_shorten():
    import submitit

    from launcher.compat.submitit import ended_without_waiting

    assert isinstance(getattr(submitit.core.core.Job, "_results_timeout_s", None), int | float), \
        changed("submitit", "Job._results_timeout_s", "submitit")
    job = object.__new__(submitit.LocalJob)
    job._cancel_at_deletion = False  # read by LocalJob.__del__
    # a job of several ranks asks each rank's sub-job for its result, each waiting
    ranks = [object.__new__(submitit.LocalJob) for _ in range(2)]
    for rank in ranks:
        rank._cancel_at_deletion = False
    job._sub_jobs = ranks
    ended_without_waiting(job)
    assert [j._results_timeout_s for j in (job, *ranks)] == [0, 0, 0]


def test_hydra_submitit_launcher_calls_the_job_with_our_arguments():
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher

    from launcher.compat.submitit import job_arguments

    parameters = list(inspect.signature(BaseSubmititLauncher.__call__).parameters)[1:]
    assert parameters == ["sweep_overrides", "job_dir_key", "job_num", "job_id",
                          "singleton_state"], \
        changed("hydra-submitit-launcher", "BaseSubmititLauncher.__call__", "submitit")
    assert len(job_arguments(["a=1"], 3, None)) == len(parameters)


# ---- Lightning ---------------------------------------------------------------------
def test_lightning_restores_every_random_state():
    from launcher.compat.lightning import collect_rng_states, set_rng_states

    states = collect_rng_states(include_cuda=False)
    first = (random.random(), torch.rand(1).item())
    set_rng_states(states)
    assert (random.random(), torch.rand(1).item()) == first, \
        changed("pytorch-lightning", "_collect_rng_states/_set_rng_states", "lightning")


def test_lightnings_csv_writer_continues_an_existing_file(tmp_path):
    from launcher.compat.lightning import AppendingExperimentWriter

    (tmp_path / "metrics.csv").write_text("step,valid/loss\n0,1.5\n")
    writer = AppendingExperimentWriter(log_dir=str(tmp_path))
    writer.log_metrics({"valid/loss": 1.2}, step=1)
    writer.save()
    assert (tmp_path / "metrics.csv").read_text().splitlines() == \
        ["step,valid/loss", "0,1.5", "1,1.2"], \
        changed("pytorch-lightning", "ExperimentWriter._check_log_dir_exists", "lightning")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A Trainer after one short fit, and the checkpoint it wrote mid-way."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)
            self.saved: dict = {}

        def training_step(self, batch, batch_idx):
            loss = self.layer(batch[0]).pow(2).mean()
            self.log("train/loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("valid/loss", self.layer(batch[0]).pow(2).mean())

        def on_save_checkpoint(self, checkpoint):
            self.saved = checkpoint

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=2)
    module = Tiny()
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu",
                         default_root_dir=str(tmp_path_factory.mktemp("fit")))
    trainer.fit(module, data, data)
    trainer.save_checkpoint(str(tmp_path_factory.mktemp("ckpt") / "x.ckpt"))
    return trainer, module.saved


def test_lightnings_fit_loop_counts_batches_where_we_read_them(fitted):
    from launcher.compat.lightning import batch_index, batches_done_this_epoch

    trainer, _ = fitted
    assert batch_index(trainer) == 3 and batches_done_this_epoch(trainer) == 4, \
        changed("pytorch-lightning", "the fit loop's batch counters", "lightning")


def test_lightnings_loop_internals_that_resume_at_an_epoch_boundary_rewrites(fitted):
    trainer, checkpoint = fitted
    fit = checkpoint["loops"]["fit_loop"]
    for key in ("epoch_loop.batch_progress", "epoch_loop.val_loop.batch_progress",
                "epoch_loop.state_dict"):
        assert key in fit, changed("pytorch-lightning", f"checkpoint['loops'] ({key})",
                                   "lightning_loops")
    assert "_batches_that_stepped" in fit["epoch_loop.state_dict"]
    progress = fit["epoch_loop.batch_progress"]
    assert {"ready", "started", "processed", "completed"} <= set(progress["total"])
    assert "is_last_batch" in progress
    epoch_loop = trainer.fit_loop.epoch_loop
    for owner, name in ((epoch_loop, "_should_check_val_fx"), (epoch_loop, "_results"),
                        (trainer.fit_loop, "_restarting"), (trainer.fit_loop, "_data_fetcher"),
                        (trainer._logger_connector, "_first_loop_iter"),
                        (trainer, "_signal_connector")):
        assert hasattr(owner, name), changed("pytorch-lightning", name, "lightning_loops")
