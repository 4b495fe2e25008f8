"""`make bench` runs end to end in its quick mode and reports every benchmark.

Benchmarks are not tests: no figure is held to its target here. What is
checked is that every section ran and reported numbers (or, for what needs
the SLURM cluster, says plainly that it is not available), and that a quick
run never replaces the real results in bench/RESULTS.md.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, slurm_available

pytestmark = pytest.mark.slow
SECTIONS = ("B1", "B2", "B3", "B4", "B5", "B6")
NEEDS_SLURM = ("B3", "B4")
RESULTS = ROOT / "bench" / "RESULTS.md"


def numeric(figure: dict) -> bool:
    value = figure["value"]
    return isinstance(value, int | float) and math.isfinite(value)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, dict]:
    """`make bench` in quick mode (its set-up prerequisites taken as done), into tmp."""
    out = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    before = RESULTS.read_bytes() if RESULTS.exists() else None
    done = subprocess.run(
        ["make", "-o", "slurm-up", "-o", ".venv/.installed", "bench",
         f"BENCH_ARGS=--quick --out {out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    after = RESULTS.read_bytes() if RESULTS.exists() else None
    assert before == after, "a quick run changed bench/RESULTS.md"
    report = json.loads(out.with_suffix(".json").read_text()) if out.exists() else {}
    return done, out, report


def test_make_bench_quick_succeeds_and_writes_the_report(quick_run):
    done, out, report = quick_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = out.read_text()
    assert "Quick mode" in text
    for key in SECTIONS:
        assert f"## {key} " in text, f"section {key} missing from the report"
    assert "| python |" in text and "| torch |" in text and "| cpu |" in text
    assert report["quick"] is True


def test_every_section_has_figures_or_says_why_not(quick_run):
    _, _, report = quick_run
    sections = {s["key"]: s for s in report["sections"]}
    assert set(sections) == set(SECTIONS)
    for key, section in sections.items():
        assert not section["unavailable"].startswith("failed"), section["unavailable"]
        if key in NEEDS_SLURM and not slurm_available():
            assert "SLURM" in section["unavailable"]
            continue
        assert any(numeric(f) for f in section["figures"]), f"{key} has no numeric figure"


def test_overhead_and_start_up_are_ratios_against_baselines(quick_run):
    _, _, report = quick_run
    figures = {f["name"]: f for s in report["sections"] for f in s["figures"]}
    shared = [f for name, f in figures.items() if name.endswith("shared path (launch)")]
    assert shared and all(f["baseline"] and f["ratio"] > 0 for f in shared)
    first_step = figures["first step: launch bench/recipe"]
    assert first_step["baseline"] == "first step: python lightning_script.py"
    assert first_step["ratio"] > 0 and first_step["target"] == "<= 1.3x the script"
    assert first_step["holds"] == (first_step["ratio"] <= 1.3)


def test_scheduler_calls_are_counted(quick_run):
    if not slurm_available():
        pytest.skip("the local SLURM cluster is not up (run: make slurm-up)")
    _, _, report = quick_run
    figures = {f["name"]: f for s in report["sections"] for f in s["figures"]}
    assert figures["sbatch calls: launch -m, first launch"]["value"] == 1
    assert figures["sbatch calls: launch -m, again"]["value"] == 1
    b4 = next(s for s in report["sections"] if s["key"] == "B4")
    if not b4["unavailable"]:
        calls = {f["name"]: f["value"] for f in b4["figures"] if f["unit"] == "calls"}
        assert calls["squeue calls per status"] == 1 and calls["sacct calls per status"] == 1
