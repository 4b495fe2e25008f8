"""A LightningModule that records, per rank, what the distributed run looked like."""

import hashlib
import json
import os
import signal
import socket
import sys
from pathlib import Path

import torch

from launcher.lightning_module import ESPnetLightningModule


class ProbeModule(ESPnetLightningModule):
    def on_train_start(self):
        Path(self.config["run_dir"], f"pid.rank{self.global_rank}").write_text(str(os.getpid()))

    def on_train_end(self):
        weights = torch.cat([p.detach().flatten() for p in self.model.parameters()])
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
    """Sends itself SIGTERM once after each step in `interrupt_at`, as a scheduler would."""

    def on_train_batch_end(self, outputs, batch, batch_idx):
        steps = self.config.get("interrupt_at") or []
        marker = Path(self.config["run_dir"]) / f"interrupted.{self.global_step}"
        if self.global_step in steps and not marker.exists():
            marker.write_text("")
            os.kill(os.getpid(), signal.SIGTERM)
