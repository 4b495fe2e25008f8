"""A disk that fills up mid-run: one line saying so, the previous checkpoint intact, no
half-written temporaries left, and the next run starts clean."""

from __future__ import annotations

import errno
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import torch
from test_interrupts import finish, start, wait_for_steps

from launcher.atomic import NoSpace, remove_stale, write_text
from launcher.components.callbacks.checkpoints import AtomicCheckpointIO


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (root may mount one; elsewhere the test says why it cannot run)."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_disk_fails_the_run_in_one_line_and_leaves_no_temporaries(toy_recipe,
                                                                        small_disk):
    exp = small_disk / "exp"
    command = ("+model.step_sleep_s=0.3", "trainer.max_epochs=30",
               "++trainer.checkpoint_every_n_steps=1")
    process = start(toy_recipe, exp, *command)
    (run_dir,) = wait_for_steps(exp, step=3)
    filler = fill(small_disk)
    code, _, err = finish(process)
    assert code == 1 and "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"launch: error: failed: no space left on {small_disk}"), line
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "no space left on" in status["error"]
    assert list(exp.rglob(".*.tmp")) == []
    kept = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    assert kept and all("state_dict" in torch.load(p, weights_only=False) for p in kept)

    filler.unlink()
    stale = run_dir / "checkpoints" / ".last.ckpt.424242.tmp"
    stale.write_bytes(b"half a checkpoint")
    resumed = start(toy_recipe, exp, *command)
    log = run_dir / "run.log"
    deadline = time.monotonic() + 120
    while "resuming from" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    resumed.terminate()
    assert finish(resumed)[0] == 143
    assert not stale.exists()
    assert f"removed {stale}, left half-written by an earlier attempt" in log.read_text()


def test_a_checkpoint_write_that_fails_leaves_no_temporary(tmp_path, monkeypatch):
    from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

    def half_then_full(self, checkpoint, path, storage_options=None):
        Path(path).write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", half_then_full)
    monkeypatch.setattr("launcher.atomic.shutil.disk_usage",
                        lambda path: type("Usage", (), {"free": 0})())
    target = tmp_path / "last.ckpt"
    with pytest.raises(NoSpace, match=f"no space left on .* \\(writing {target}\\)"):
        AtomicCheckpointIO().save_checkpoint({}, target)
    assert list(tmp_path.iterdir()) == []


def test_a_status_is_rewritten_in_place_when_no_new_file_fits(tmp_path, monkeypatch):
    path = tmp_path / "status.json"
    path.write_text('{"state": "running", "padding": "........................"}')

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    write_text(path, '{"state": "failed"}', small=True)
    assert json.loads(path.read_text()) == {"state": "failed"}
    assert list(tmp_path.iterdir()) == [path]


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    stale = [tmp_path / ".status.json.7.tmp", tmp_path / "checkpoints" / ".last.ckpt.9.tmp"]
    kept = [tmp_path / "checkpoints" / "last.ckpt", tmp_path / "metrics.csv",
            tmp_path / ".feats.3.tmp.npz"]  # a rank's statistics: not ours to remove
    for path in stale + kept:
        path.write_text("x")
    assert sorted(remove_stale([tmp_path])) == sorted(stale)
    assert all(p.exists() for p in kept)
