"""Ranks for Lightning from the process submitit started.

The launcher creates every rank process itself: one srun task per rank on
SLURM, one subprocess per rank with the local executor. This environment
tells Lightning so (`creates_processes_externally`), which stops it from
re-executing the command line, and gives it ranks, world size and the
rendezvous address from submitit's job environment, identically on both
backends.
"""

from __future__ import annotations

from pytorch_lightning.plugins.environments import ClusterEnvironment

from launcher.ranks import under_submitit


class SubmititEnvironment(ClusterEnvironment):
    def __init__(self) -> None:
        super().__init__()
        from submitit.helpers import TorchDistributedEnvironment

        self._env = TorchDistributedEnvironment()

    @property
    def creates_processes_externally(self) -> bool:
        return True

    @property
    def main_address(self) -> str:
        return self._env.master_addr

    @property
    def main_port(self) -> int:
        return self._env.master_port

    @staticmethod
    def detect() -> bool:
        return under_submitit()

    def world_size(self) -> int:
        return self._env.world_size

    def set_world_size(self, size: int) -> None:
        if size != self._env.world_size:
            raise RuntimeError(f"Lightning computed world size {size} but the job has "
                               f"{self._env.world_size} tasks; resources and trainer disagree")

    def global_rank(self) -> int:
        return self._env.rank

    def set_global_rank(self, rank: int) -> None:
        pass  # the rank is fixed by the task that runs this process

    def local_rank(self) -> int:
        return self._env.local_rank

    def node_rank(self) -> int:
        import submitit

        return submitit.JobEnvironment().node
