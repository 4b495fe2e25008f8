"""`${hydra:...}` interpolations in a recipe config resolve in the job, where Hydra runs;
planning and `--dry-run` show them as written instead of failing."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import edit_config

HYDRA_VALUE = "${hydra:runtime.output_dir}"


def with_hydra_value(recipe: Path) -> None:
    edit_config(recipe, lambda c: c.update(inference_dir=HYDRA_VALUE))


def test_a_dry_run_shows_a_hydra_interpolation_as_written(launch_cli, toy_recipe):
    with_hydra_value(toy_recipe)
    code, out, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}", "--dry-run")
    assert code == 0, err
    assert f"inference_dir: {HYDRA_VALUE}" in out


def test_the_job_resolves_a_hydra_interpolation(launch_cli, toy_recipe):
    with_hydra_value(toy_recipe)
    code, _, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}",
                              "trainer.max_epochs=1")
    assert code == 0, err
    (run_dir,) = [p for p in (toy_recipe / "exp").iterdir() if p.name != "sweeps"]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["inference_dir"] == str(run_dir)
