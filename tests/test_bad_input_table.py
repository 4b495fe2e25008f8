"""Malformed input, one row per case: one line naming the key, where it was set and the
fix, and nothing written. The classes follow the list of cases a careless or hostile
user types; each row failed before (a traceback, or a refusal only after the run folder
was written or an epoch trained)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import edit_config

CONFIG = "conf/config.yaml"


@dataclass(frozen=True)
class Case:
    name: str
    overrides: tuple[str, ...]
    expected: tuple[str, ...]  # substrings of the one error line
    edit: Callable[[Path], None] | None = None
    blamed: str = ""  # the override named as the source, if any
    extra: dict = field(default_factory=dict)


def _append(text: str) -> Callable[[Path], None]:
    def edit(recipe: Path) -> None:
        path = recipe / CONFIG
        path.write_text(path.read_text() + text)
    return edit


def _set(**values) -> Callable[[Path], None]:
    return lambda recipe: edit_config(recipe, lambda c: c.update(values))


def _drop(*path: str) -> Callable[[Path], None]:
    def change(config: dict) -> None:
        *parents, last = path
        for key in parents:
            config = config[key]
        del config[last]
    return lambda recipe: edit_config(recipe, change)


ORGANIZER = "launcher.components.data.data_organizer.DataOrganizer"
NORMALISED = """from src.model import Regressor


class Normalised(Regressor):
    def __init__(self, stats_file: str, **kwargs):
        super().__init__(**kwargs)
"""


def _normalised(stats: str, **top: str) -> Callable[[Path], None]:
    """The toy model reading statistics from `<stats>/train/feats_stats.npz`."""
    def edit(recipe: Path) -> None:
        (recipe / "src" / "normalised.py").write_text(NORMALISED)
        edit_config(recipe, lambda c: c.update(top) or c["model"].update(
            _target_="src.normalised.Normalised", stats_file=f"{stats}/train/feats_stats.npz"))
    return edit


CASES = [
    # wrong types of the launcher's own settings and the executor's options
    Case("resources-not-a-block", ("resources=abc",), ("key 'resources'", "block of settings"),
         blamed="resources=abc"),
    Case("resources-nodes-word", ("resources.nodes=two",),
         ("key 'resources.nodes'", "integer >= 1"), blamed="resources.nodes=two"),
    Case("requeue-count-word", ("requeue.max_requeues=many",),
         ("key 'requeue.max_requeues'", "integer >= 0")),
    Case("launcher-max-parallel-word",
         ("hydra/launcher=slurm", "hydra.launcher.max_parallel=abc", "-m", "optim.lr=0.1,0.2"),
         ("key 'hydra.launcher.max_parallel'", "integer >= 1")),
    Case("launcher-option-elsewhere", ("hydra/launcher=slurm", "hydra.launcher.partition=debug",
                                       "-m", "optim.lr=0.1,0.2"),
         ("key 'hydra.launcher.partition'", "set resources.partition")),
    Case("launcher-option-ignored-before", ("hydra/launcher=slurm", "+hydra.launcher.timeout_min=7",
                                            "-m", "optim.lr=0.1,0.2"),
         ("key 'hydra.launcher.timeout_min'", "set resources.time_min")),
    Case("launcher-option-typo", ("hydra.launcher.max_paralel=3", "-m", "optim.lr=0.1,0.2"),
         ("'max_paralel' is not an option of the local executor", "max_parallel")),
    # best_model_criterion malformed
    Case("criterion-top-k-word", ("best_model_criterion=[[valid/loss,abc,min]]",),
         ("key 'best_model_criterion[0]'", "top_k 'abc'")),
    Case("criterion-not-nested", ("best_model_criterion=[valid/loss,2,min]",),
         ("one criterion, not a list of them", "wrap it in a second list")),
    Case("criterion-a-word", ("best_model_criterion=minimum",),
         ("key 'best_model_criterion'", "'minimum' is not a list")),
    Case("criterion-mode", ("best_model_criterion=[[valid/loss,1,minimum]]",),
         ("mode 'minimum' is not min or max",)),
    # YAML syntax and interpolations
    Case("yaml-unclosed-bracket", (), ("YAML syntax error at line", "expected ',' or ']'",
                                       CONFIG), edit=_append("extra: [1, 2\n")),
    Case("yaml-tab", (), ("YAML syntax error", "'\\t'"), edit=_append("\tbad: 1\n")),
    Case("yaml-duplicate-key", (), ("found duplicate key seed",), edit=_append("seed: 1\n")),
    Case("interpolation-missing-override", ("model.hidden=${nothere}",),
         ("key 'model.hidden'", "'${nothere}' cannot be resolved", "not found"),
         blamed="model.hidden=${nothere}"),
    Case("interpolation-missing-file", (), ("key 'model.hidden'", "'${model.width}'", CONFIG),
         edit=lambda r: edit_config(r, lambda c: c["model"].update(hidden="${model.width}"))),
    Case("interpolation-unknown-resolver", ("+note=${nosuch:x}",),
         ("key 'note'", "Unsupported interpolation type nosuch")),
    # GPUs where there are none
    Case("gpus-on-a-cpu-machine", ("resources.gpus_per_node=1",),
         ("key 'resources.gpus_per_node'", "this machine has 0")),
    # names the launcher does not know
    Case("strategy-typo", ("+trainer.strategy=dpp",), ("unknown strategy 'dpp'",
                                                      "did you mean 'ddp'")),
    Case("strategy-block-name", ("+trainer.strategy={name:fdsp}",),
         ("key 'trainer.strategy.name'", "'fdsp' is not ddp, fsdp or fsdp2")),
    Case("logger-typo", ("+trainer.logger=wandbx",), ("key 'trainer.logger'",
                                                     "unknown logger 'wandbx'")),
    Case("logger-in-list", ("+trainer.logger=[csv,tensorbord]",),
         ("key 'trainer.logger[1]'", "unknown logger 'tensorbord'")),
    Case("profiler-typo", ("+trainer.profiler=fast",), ("unknown profiler 'fast'",)),
    Case("callbacks-not-blocks", ("+trainer.callbacks=[EarlyStopping]",),
         ("key 'trainer.callbacks'", "list of {_target_: ...} blocks")),
    Case("requeue-signal", ("+requeue.signal=KILL",), ("key 'requeue.signal'",
                                                      "'KILL' is not one of")),
    # what reaches the batch script or the filesystem
    Case("setup-from-command-line", ("hydra/launcher=slurm", "+cluster=local",
                                     "cluster.setup=['touch /tmp/launcher-owned']"),
         ("key 'cluster.setup'", "cannot be set on the command line",
          "conf/cluster/<name>.yaml")),
    Case("setup-appended", ("+cluster.setup=[id]",), ("cannot be set on the command line",)),
    Case("setup-interpolates", ("+cluster=lab", "+cmd=id"),
         ("key 'cluster.setup'", "interpolates a config value into shell code"),
         edit=lambda r: (r / "conf" / "cluster").mkdir() or (r / "conf" / "cluster" / "lab.yaml")
         .write_text("setup: ['echo ${cmd}']\n")),
    Case("exp-root-newline", ("exp_root='{tmp}/a\nb'",), ("key 'exp_root'", "control character")),
    Case("exp-root-name-too-long", ("exp_root={tmp}/" + "x" * 300,),
         ("key 'exp_root'", "is 300 bytes", "allows 255")),
    Case("exp-root-under-a-file", ("exp_root={tmp}/a_file/exp",),
         ("key 'exp_root'", "is a file, so")),
    Case("exp-root-with-a-quote", ("exp_root='{tmp}/it\\'s'",), ("key 'exp_root'", "a quote")),
    # what training needs and the config does not give: refused before the job starts
    Case("no-optimizer-in-the-recipe", (), ("key 'optim'", "no optimizer configured", CONFIG,
                                            "ESPnet3's 'optimizer:'"), edit=_drop("optim")),
    Case("no-train-dataset-in-the-recipe", (), ("key 'dataset.train'", "no train dataset",
                                                CONFIG, "src.data.MyDataset"),
         edit=_drop("dataset", "train")),
    Case("no-dataset-block", (), ("key 'dataset'", "stage 'train' reads the train split"),
         edit=_drop("dataset")),
    Case("train-dataset-removed", ("~dataset.train",), ("key 'dataset.train'",
                                                       "no train dataset"),
         blamed="~dataset.train"),
    Case("organizer-without-train", (), ("key 'dataset.train'",
                                         "add a train list to the organizer"),
         edit=_set(dataset={"_target_": ORGANIZER, "test": [
             {"name": "t", "dataset": {"_target_": "src.model.ToyData"}}]})),
    Case("train-without-statistics", ("stages=[train]",),
         ("key 'stages'", "model.stats_file is", "stats/train/feats_stats.npz",
          "stages=[collect_stats,train]"), edit=_normalised("${run_dir}/stats"),
         blamed="stages=[train]"),
    Case("train-without-statistics-in-stats-dir", (),
         ("key 'stages'", "statistics nobody has collected", CONFIG, "/feats/train/"),
         edit=_normalised("${stats_dir}", stats_dir="${run_dir}/feats")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(case, launch_cli, toy_recipe, tmp_path,
                                                  monkeypatch):
    monkeypatch.delenv("SLURM_CONF", raising=False)  # no scheduler is asked for any of these
    (tmp_path / "a_file").write_text("")
    if case.edit:
        case.edit(toy_recipe)
    exp = toy_recipe / "exp"
    overrides = [o.replace("{tmp}", str(tmp_path)) for o in case.overrides]
    if not any(o.startswith("exp_root") for o in overrides):
        overrides.insert(0, f"exp_root={exp}")
    code, out, err = launch_cli(toy_recipe, *overrides)
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("launch: error:"), err
    for text in case.expected:
        assert text in lines[0], lines[0]
    if case.blamed:
        assert f"command-line override '{case.blamed}'" in lines[0]
    assert not exp.exists(), "a rejected launch must write nothing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "toy"]
    assert not Path("/tmp/launcher-owned").exists()


def test_a_metric_never_logged_fails_before_training(launch_cli, toy_recipe):
    """Only the module knows what it logs: the first validation (the sanity check before
    training) tells, listing what is logged; no step is trained, nothing checkpointed."""
    exp = toy_recipe / "exp"
    code, _, err = launch_cli(toy_recipe, f"exp_root={exp}",
                              "best_model_criterion=[[valid/lossx,1,min]]")
    assert code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "the metric 'valid/lossx' is not logged; logged: valid/loss" in line
    assert "did you mean 'valid/loss'" in line
    (run_dir,) = [p for p in exp.iterdir() if p.name != "sweeps"]
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.csv").exists()
    status = (run_dir / "status.json").read_text()
    assert '"state": "failed"' in status and "valid/lossx" in status


def test_a_constructor_that_raises_names_the_key_and_the_users_class(launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    code, _, err = launch_cli(toy_recipe, f"exp_root={exp}", "model.hidden=-1")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "key 'model'" in lines[0] and "src.model.Regressor(...) raised RuntimeError" in lines[0]
    assert "command-line override 'model.hidden=-1'" in lines[0]
    assert "_recipe_" not in lines[0]
    (run_dir,) = [p for p in exp.iterdir() if p.name != "sweeps"]
    assert "Traceback" in (run_dir / "run.log").read_text()  # for the recipe's author


def test_a_dataset_that_raises_names_its_split(launch_cli, toy_recipe):
    (toy_recipe / "src" / "broken.py").write_text(
        "class Broken:\n    def __init__(self):\n        raise ValueError('no such file x.scp')\n")
    edit_config(toy_recipe, lambda c: c["dataset"].update(valid={"_target_": "src.broken.Broken"}))
    code, _, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "key 'dataset.valid'" in line
    assert "src.broken.Broken(...) raised ValueError: no such file x.scp" in line
