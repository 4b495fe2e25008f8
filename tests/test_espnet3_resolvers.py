"""ESPnet3's `${load_line:...}` and `${load_yaml:...}` resolve when planning and in the
job, a relative path from the recipe's conf/ or the recipe folder; a missing file or
key is refused before launch in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import edit_config, rejected

from launcher.job.espnet3_resolvers import (
    NotInFile,
    load_line,
    load_yaml,
    register_espnet3_resolvers,
)


@pytest.fixture
def files_recipe(toy_recipe: Path) -> Path:
    """The toy recipe reading a token list and values of another YAML file."""
    (toy_recipe / "conf" / "tokens.txt").write_text("<blank>\n  a \nb\n")
    (toy_recipe / "conf" / "train.yaml").write_text(
        "exp_tag: asr_debug\nsizes:\n  hidden: 6\n")

    def change(config: dict) -> None:
        config["model"]["hidden"] = "${load_yaml:train.yaml,sizes.hidden}"
        config["exp_tag"] = "${load_yaml:conf/train.yaml,exp_tag}"  # from the recipe folder
        config["tokenizer"] = {  # ESPnet3's block, which nothing here reads
            "token_list": "${load_line:tokens.txt}",
            "again": "${load_line:${recipe_dir}/conf/tokens.txt}",
            "whole": "${load_yaml:train.yaml}"}

    edit_config(toy_recipe, change)
    return toy_recipe


def test_a_dry_run_shows_the_values_read_from_files(launch_cli, files_recipe):
    code, out, err = launch_cli(files_recipe, f"exp_root={files_recipe / 'exp'}", "--dry-run")
    assert code == 0, err
    shown = yaml.safe_load(out.split("config:\n", 1)[1].split("\n===", 1)[0])
    assert shown["tokenizer"]["token_list"] == ["<blank>", "a", "b"]
    assert shown["tokenizer"]["again"] == ["<blank>", "a", "b"]
    assert shown["exp_tag"] == "asr_debug"
    assert shown["tokenizer"]["whole"] == {"exp_tag": "asr_debug", "sizes": {"hidden": 6}}
    assert shown["model"]["hidden"] == 6


def test_the_job_reads_the_files(launch_cli, files_recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the working folder plays no part
    code, _, err = launch_cli(files_recipe, f"exp_root={files_recipe / 'exp'}",
                              "trainer.max_epochs=1")
    assert code == 0, err
    (run_dir,) = [p for p in (files_recipe / "exp").iterdir() if p.name != "sweeps"]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["tokenizer"]["token_list"] == ["<blank>", "a", "b"]
    assert saved["model"]["hidden"] == 6


@pytest.mark.parametrize("value,expected", [
    ("${load_yaml:missing.yaml}", "no file 'missing.yaml' in "),
    ("${load_line:data/missing.txt}", "no file 'data/missing.txt' in "),
    ("${load_yaml:train.yaml,sizes.nope}", "no key 'sizes.nope' in "),
])
def test_a_missing_file_or_key_is_refused_in_one_line(launch_cli, files_recipe, value,
                                                      expected):
    edit_config(files_recipe, lambda c: c["tokenizer"].update(vocab=value))
    line = rejected(launch_cli, files_recipe)
    assert "key 'tokenizer.vocab'" in line and expected in line, line
    assert "HINT: check the" in line and "raised while resolving" not in line


def test_registering_again_is_harmless_and_follows_the_recipe(tmp_path):
    from omegaconf import OmegaConf

    for name in ("a", "b"):
        (tmp_path / name / "conf").mkdir(parents=True)
        (tmp_path / name / "conf" / "v.yaml").write_text(f"name: {name}\n")
    register_espnet3_resolvers(tmp_path / "a")
    register_espnet3_resolvers(tmp_path / "a")
    assert OmegaConf.create({"x": "${load_yaml:v.yaml,name}"}).x == "a"
    register_espnet3_resolvers(tmp_path / "b")
    assert OmegaConf.create({"x": "${load_yaml:conf/v.yaml,name}"}).x == "b"


def test_the_resolvers_as_espnet3_defines_them(tmp_path):
    register_espnet3_resolvers(tmp_path)
    (tmp_path / "lines.txt").write_text(" x \n\ny\n")
    assert load_line(tmp_path / "lines.txt") == ["x", "", "y"]  # an absolute path
    (tmp_path / "c.yaml").write_text("a: {b: 1, n: null}\n")
    assert load_yaml(str(tmp_path / "c.yaml")) == {"a": {"b": 1, "n": None}}
    assert load_yaml("c.yaml", "a.b") == 1  # found in the recipe folder
    assert load_yaml("c.yaml", " ") == {"a": {"b": 1, "n": None}}
    with pytest.raises(NotInFile, match=r"no key 'a\.n'"):  # null counts as missing
        load_yaml("c.yaml", "a.n")
    with pytest.raises(FileNotFoundError, match=r"no file 'nope\.txt'"):
        load_line("nope.txt")


def test_espnet3s_own_registration_does_not_clash(tmp_path, monkeypatch):
    """ESPnet3's module registers the same names on import, failing if they are taken:
    with ESPnet installed it is imported first and ours replace its."""
    import sys

    from omegaconf import OmegaConf

    from launcher.job import espnet3_resolvers

    utils = tmp_path / "site" / "espnet3" / "utils"
    utils.mkdir(parents=True)
    (utils.parent / "__init__.py").write_text("")
    (utils / "__init__.py").write_text("")
    (utils / "config_utils.py").write_text(
        "from omegaconf import OmegaConf\n"
        "for name in ('load_line', 'load_yaml'):\n"
        "    OmegaConf.register_new_resolver(name, lambda *a: 'espnet3')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(espnet3_resolvers, "_REGISTERED", [])
    for name in ("load_line", "load_yaml"):
        OmegaConf.clear_resolver(name)
    try:
        register_espnet3_resolvers(tmp_path)
        import espnet3.utils.config_utils  # noqa: F401  (already imported: no clash)

        (tmp_path / "v.yaml").write_text("a: ours\n")
        assert OmegaConf.create({"x": "${load_yaml:v.yaml,a}"}).x == "ours"
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "espnet3"]:
            del sys.modules[name]
