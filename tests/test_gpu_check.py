"""`make gpu-check` (bench/gpu_check.py): without a GPU it says so in one line and writes
nothing; its results table is formatted as stated. The checks themselves need GPUs (or,
as a rehearsal, `--cpu`, minutes of training) and do not run here."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

BENCH = ROOT / "bench"
SCRIPT = BENCH / "gpu_check.py"
RESULTS = BENCH / "GPU_RESULTS.md"
MODULES = ("gpu_check", "gpu_report", "gpu_runs")


@pytest.fixture(scope="module")
def bench_modules():
    """The script's modules as it imports them: bench/ first on sys.path, for these tests
    only (bench/ also has modules named run, common and report)."""
    sys.path.insert(0, str(BENCH))
    try:
        yield {name: importlib.import_module(name) for name in MODULES}
    finally:
        sys.path.remove(str(BENCH))
        for name in MODULES:
            sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def gpu_check(bench_modules):
    return bench_modules["gpu_check"]


@pytest.fixture(scope="module")
def gpu_report(bench_modules):
    return bench_modules["gpu_report"]


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


def test_results_table_rows(gpu_report):
    Row = gpu_report.Row
    rows = [
        Row("tones recipe, 1 GPU, bf16-mixed", wall_s=23.456,
            figures={"test/loss": 0.123456, "test/ter": 0.05, "GPU used": "True", "steps": 282}),
        Row("FSDP1 sharded: checkpoint + resume, 1 GPU", wall_s=40.0).fail(
            "run.log has no 'resuming from' | see below", "Traceback ..."),
        Row("DDP (nccl), 1 GPU").skip("needs 2 GPUs (this machine has 1)"),
        Row("B1", wall_s=5, figures={"ratio shared/Lightning": float("nan")}),
    ]
    assert gpu_report.format_table(rows).splitlines() == [
        "| check | result | wall s | figures |",
        "|---|---|---:|---|",
        "| tones recipe, 1 GPU, bf16-mixed | passed | 23.5 | "
        "test/loss 0.1235; test/ter 0.05; GPU used True; steps 282 |",
        "| FSDP1 sharded: checkpoint + resume, 1 GPU | failed: run.log has no "
        "'resuming from' \\| see below | 40.0 |  |",
        "| DDP (nccl), 1 GPU | skipped: needs 2 GPUs (this machine has 1) |  |  |",
        "| B1 | passed | 5.0 | ratio shared/Lightning nan |",
    ]


def test_results_file_has_the_machine_the_table_and_what_failed(gpu_report):
    Row = gpu_report.Row
    rows = [Row("tones", wall_s=1.0, commands=[".venv/bin/launch egs3/tones/asr1 x=1"]),
            Row("ddp", wall_s=2.0).fail("launch exited 1", "line one\nline two\n")]
    text = gpu_report.format_report(rows, {"GPUs": "1 x NVIDIA H200", "driver": "570.1"},
                                   cpu=False, elapsed_s=12.3)
    assert text.startswith("# GPU check\n")
    assert "| GPUs | 1 x NVIDIA H200 |" in text and "| driver | 570.1 |" in text
    assert "1 passed, 1 failed, 0 skipped." in text
    assert gpu_report.format_table(rows) in text
    assert "  - `.venv/bin/launch egs3/tones/asr1 x=1`" in text
    assert "### ddp\n\n```\nline one\nline two\n```" in text


def imported(module: str) -> set[str]:
    """The top-level names of what `module` (a file of bench/) imports, wherever it does."""
    tree = ast.parse((BENCH / f"{module}.py").read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {node.module for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    return {name.split(".")[0] for name in names}


def test_jobs_get_a_copy_of_every_bench_module_gpu_check_imports(gpu_check):
    assert set(gpu_check.JOB_MODULES) == set(MODULES)
    bench = {path.stem for path in BENCH.glob("*.py")}
    for module in gpu_check.JOB_MODULES:
        assert imported(module) & bench <= set(gpu_check.JOB_MODULES), module


def test_jobs_build_step_pause_from_the_copies_alone(tmp_path, gpu_check):
    """As a training job does: `gpu_check.StepPause` by its `_target_`, with only the
    copies on the path (no bench/), from another folder."""
    path = gpu_check.job_path(tmp_path)
    assert sorted(p.name for p in path.iterdir()) == sorted(f"{m}.py" for m in MODULES)
    code = "\n".join([
        "import sys",
        "from hydra.utils import instantiate",
        "from pytorch_lightning.callbacks import Callback",
        "pause = instantiate({'_target_': 'gpu_check.StepPause', 'seconds': 0.25})",
        "assert isinstance(pause, Callback) and pause.seconds == 0.25",
        "print(type(pause).__module__, type(pause).__qualname__)",
        f"bench = {str(BENCH)!r}",
        "print(sorted(m for m, v in sys.modules.items()",
        "             if str(getattr(v, '__file__', '') or '').startswith(bench)))",
        "print(sorted(m for m in sys.modules if m.startswith('gpu_')))"])
    env = {**os.environ, "PYTHONPATH": str(path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "gpu_check StepPause", "[]", str(sorted(["gpu_check", *MODULES[1:]]))]
