"""`make gpu-check` (bench/gpu_check.py): without a GPU it says so in one line and writes
nothing; its results table is formatted as stated. The checks themselves need GPUs (or,
as a rehearsal, `--cpu`, minutes of training) and do not run here."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPT = ROOT / "bench" / "gpu_check.py"
RESULTS = ROOT / "bench" / "GPU_RESULTS.md"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The script with no GPU visible, its temporary files confined to tmp_path/tmp."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TMPDIR": str(scratch)}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_without_a_gpu_it_exits_2_with_one_line_and_writes_nothing(tmp_path, gpu_check):
    before = RESULTS.read_bytes() if RESULTS.exists() else None
    out = tmp_path / "results.md"
    done = run_script(tmp_path, "--out", str(out))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [gpu_check.NO_GPU]
    assert gpu_check.NO_GPU == ("gpu-check: no GPU visible (torch.cuda.device_count() == 0); "
                                "run it on a machine with an NVIDIA GPU")
    assert not out.exists()
    assert list((tmp_path / "tmp").iterdir()) == []  # no scratch folder either
    assert (RESULTS.read_bytes() if RESULTS.exists() else None) == before


def test_the_cpu_rehearsal_never_writes_the_gpu_results(tmp_path):
    done = run_script(tmp_path, "--cpu", "--out", str(RESULTS))
    assert done.returncode == 2
    assert "--cpu never writes bench/GPU_RESULTS.md" in done.stderr
    assert list((tmp_path / "tmp").iterdir()) == []


def test_results_table_rows(gpu_check):
    Row = gpu_check.Row
    rows = [
        Row("tones recipe, 1 GPU, bf16-mixed", wall_s=23.456,
            figures={"test/loss": 0.123456, "test/ter": 0.05, "GPU used": "True", "steps": 282}),
        Row("FSDP1 sharded: checkpoint + resume, 1 GPU", wall_s=40.0).fail(
            "run.log has no 'resuming from' | see below", "Traceback ..."),
        Row("DDP (nccl), 1 GPU").skip("needs 2 GPUs (this machine has 1)"),
        Row("B1", wall_s=5, figures={"ratio shared/Lightning": float("nan")}),
    ]
    assert gpu_check.format_table(rows).splitlines() == [
        "| check | result | wall s | figures |",
        "|---|---|---:|---|",
        "| tones recipe, 1 GPU, bf16-mixed | passed | 23.5 | "
        "test/loss 0.1235; test/ter 0.05; GPU used True; steps 282 |",
        "| FSDP1 sharded: checkpoint + resume, 1 GPU | failed: run.log has no "
        "'resuming from' \\| see below | 40.0 |  |",
        "| DDP (nccl), 1 GPU | skipped: needs 2 GPUs (this machine has 1) |  |  |",
        "| B1 | passed | 5.0 | ratio shared/Lightning nan |",
    ]


def test_results_file_has_the_machine_the_table_and_what_failed(gpu_check):
    Row = gpu_check.Row
    rows = [Row("tones", wall_s=1.0, commands=[".venv/bin/launch egs3/tones/asr1 x=1"]),
            Row("ddp", wall_s=2.0).fail("launch exited 1", "line one\nline two\n")]
    text = gpu_check.format_report(rows, {"GPUs": "1 x NVIDIA H200", "driver": "570.1"},
                                   cpu=False, elapsed_s=12.3)
    assert text.startswith("# GPU check\n")
    assert "| GPUs | 1 x NVIDIA H200 |" in text and "| driver | 570.1 |" in text
    assert "1 passed, 1 failed, 0 skipped." in text
    assert gpu_check.format_table(rows) in text
    assert "  - `.venv/bin/launch egs3/tones/asr1 x=1`" in text
    assert "### ddp\n\n```\nline one\nline two\n```" in text
