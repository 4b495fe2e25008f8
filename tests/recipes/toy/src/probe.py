"""A LightningModule that records, per rank, what the distributed run looked like."""

import hashlib
import json
import os
import signal
import socket
import sys
from pathlib import Path

import torch

from launcher.components.modeling.lightning_module import ESPnetLightningModule


class ProbeModule(ESPnetLightningModule):
    def on_train_start(self):
        super().on_train_start()
        Path(self.config["run_dir"], f"pid.rank{self.global_rank}").write_text(str(os.getpid()))

    def on_train_end(self):
        whole = [getattr(p, "full_tensor", lambda p=p: p)() for p in self.model.parameters()]
        weights = torch.cat([p.detach().flatten() for p in whole])  # FSDP2: gathered
        record = {
            "global_rank": self.global_rank,
            "world_size": self.trainer.world_size,
            "node": os.environ.get("SLURMD_NODENAME", socket.gethostname()),
            "pid": os.getpid(),
            "argv": sys.argv,
            "weights_sha": hashlib.sha256(weights.numpy().tobytes()).hexdigest(),
            "leaked": sorted(k for k in os.environ if k.endswith("_LEAK_MARK")),
            "steps": self.trainer.global_step,
        }
        path = Path(self.config["run_dir"]) / f"probe.rank{self.global_rank}.json"
        path.write_text(json.dumps(record))


class InterruptingProbe(ProbeModule):
    """Ends itself once at each global step listed, as a scheduler would.

    `interrupt_at`: SIGTERM right after the step; the launcher acts on it at the next
    step's end, checkpoints and stops. `stop_at`: SIGTERM during the step (one step a
    batch), so the run stops with a checkpoint taken right after it. `kill_at`: SIGKILL
    right after the step, once its callbacks (a periodic checkpoint) have run.
    """

    config_keys = ("interrupt_at", "stop_at", "kill_at")

    def on_train_batch_start(self, batch, batch_idx):
        super().on_train_batch_start(batch, batch_idx)
        if self._first_time("stop_at", self.global_step + 1):
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self._first_time("interrupt_at", self.global_step):
            os.kill(os.getpid(), signal.SIGTERM)
        if self._first_time("kill_at", self.global_step):
            os.kill(os.getpid(), signal.SIGKILL)

    def _first_time(self, key, step):
        """Whether `step` is listed under `key` and has not been acted on yet (a resumed
        run passes the same step again)."""
        marker = Path(self.config["run_dir"]) / f"{key}.{step}"
        if step not in (self.config.get(key) or []) or marker.exists():
            return False
        marker.write_text("")
        return True


class SampleLog(InterruptingProbe):
    """Also records, per rank, which samples each training batch holds (by their first
    feature), so a test can check that every sample of an epoch is trained once."""

    def on_train_batch_start(self, batch, batch_idx):
        super().on_train_batch_start(batch, batch_idx)
        line = {"epoch": self.current_epoch, "step": self.global_step,
                "samples": [round(float(v), 5) for v in batch["x"][:, 0]]}
        path = Path(self.config["run_dir"]) / f"samples.rank{self.global_rank}.jsonl"
        with open(path, "a") as file:
            file.write(json.dumps(line) + "\n")
