"""A job uses the CPUs SLURM gave it, not every core of the node."""

from __future__ import annotations

import pytest
import torch

from launcher.job.task import use_allocated_cpus


@pytest.fixture
def threads_restored():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("env,expected", [
    ({"SLURM_CPUS_PER_TASK": "3"}, 3),
    ({"SLURM_CPUS_PER_TASK": "3", "OMP_NUM_THREADS": "1"}, None),  # the user's choice stands
    ({}, None),  # not under SLURM: torch's own choice stands
])
def test_torch_threads_follow_the_allocation(monkeypatch, threads_restored, env, expected):
    for name in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    torch.set_num_threads(5)
    use_allocated_cpus()
    assert torch.get_num_threads() == (expected or 5)
