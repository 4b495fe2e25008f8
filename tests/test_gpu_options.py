"""The GPU options a user sets reach the request and the Trainer, and --dry-run shows them:
nodes x GPUs, --gpus-per-node, each rank's GPU, the process group backend, the strategy
and the precision. No GPU is needed: the GPUs and partitions are faked."""

from __future__ import annotations

import pytest
from conftest import rejected
from test_dry_run import dry_run

from launcher.plan.devices import sbatch_options
from launcher.resources import Resources

SLURM_GPUS = ["hydra/launcher=slurm", "resources.nodes=2", "resources.gpus_per_node=4"]


@pytest.fixture
def gpu_partition(monkeypatch):
    """A cluster whose default partition has GPUs (whatever `sinfo` here would say)."""
    from launcher.plan import allocation

    monkeypatch.setattr(allocation, "_partitions", lambda: {"gpu": (True, ",gpu:4")})


@pytest.fixture
def two_local_gpus(monkeypatch):
    """This machine shows two GPUs to torch."""
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def sbatch_part(out: str) -> str:
    return out.split("=== sbatch script", 1)[1]


def devices_block(out: str) -> str:
    return out.split("=== devices of ", 1)[1].split("\n\n", 1)[0]


def test_two_nodes_of_four_gpus_on_slurm(launch_cli, toy_recipe, gpu_partition):
    out = dry_run(launch_cli, toy_recipe, *SLURM_GPUS, "+trainer.precision=bf16-mixed")
    script = sbatch_part(out)
    for option in sbatch_options(Resources(nodes=2, gpus_per_node=4)):
        assert f"#SBATCH {option}\n" in script  # what the block says is what sbatch gets
    assert "#SBATCH --gpus-per-node=4" in script
    block = devices_block(out)
    assert block.startswith("the job: 2 node(s) x 4 GPU(s) per node = 8 rank(s)")
    for words in ("request:        sbatch --gpus-per-node=4 --ntasks-per-node=4 --nodes=2",
                  "accelerator:    gpu",
                  "the rank with local rank l on node n uses cuda:l of the 4 GPUs SLURM "
                  "allocates on node n (CUDA_VISIBLE_DEVICES set by SLURM)",
                  "strategy:       ddp",
                  "process group:  nccl (Lightning's default with GPUs)",
                  "precision:      bf16-mixed (trainer.precision, passed to the Trainer"):
        assert words in block, block
    # ... and the Trainer is told the same, precision untouched.
    for line in ("accelerator: gpu", "devices: 4", "num_nodes: 2", "precision: bf16-mixed"):
        assert line in out
    assert "would be refused" not in out


def test_local_gpus_are_the_jobs_own(launch_cli, toy_recipe, two_local_gpus, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    out = dry_run(launch_cli, toy_recipe, "resources.gpus_per_node=2")
    block = devices_block(out)
    assert block.startswith("the job: 1 node(s) x 2 GPU(s) per node = 2 rank(s)")
    assert "binding:        rank r uses cuda:r of the job's own 2 GPUs (its " \
           "CUDA_VISIBLE_DEVICES, chosen by the local executor from the GPUs visible here " \
           "(CUDA_VISIBLE_DEVICES=2,3)" in block
    assert "nccl" in block and "32-true (Lightning's default" in block
    assert "would be refused" not in out


def test_local_jobs_get_the_gpus_launch_itself_sees(monkeypatch, two_local_gpus):
    from launcher.executors.local import GpuPool, visible_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == [2, 3]  # not 0,1: those are other GPUs of the machine
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-a1,MIG-b2,GPU-c3")
    pool = GpuPool(visible_gpus(), 1)
    assert [str(pool.take()[0]), str(pool.take()[0])] == ["GPU-a1", "MIG-b2"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpus() == [0, 1]


def test_a_strategy_blocks_process_group_backend_is_shown(launch_cli, toy_recipe,
                                                           gpu_partition):
    out = dry_run(launch_cli, toy_recipe, *SLURM_GPUS,
                  "+trainer.strategy={name:ddp,process_group_backend:gloo}")
    block = devices_block(out)
    assert "process group:  gloo (trainer.strategy.process_group_backend)" in block
    assert "strategy:       ddp (process_group_backend=gloo)" in block


def test_cpu_processes_talk_over_gloo(launch_cli, toy_recipe):
    out = dry_run(launch_cli, toy_recipe, "resources.processes_per_node=2")
    block = devices_block(out)
    assert block.startswith("the job: 1 node(s) x 2 CPU process(es) per node = 2 rank(s)")
    assert "accelerator:    cpu" in block and "binding" not in block
    assert "process group:  gloo (Lightning's default on CPUs)" in block
    assert "checkpoints:    one file per checkpoint, written by rank 0" in block


@pytest.mark.parametrize("strategy", ["trainer=fsdp2",
                                      "++trainer.strategy={name:fsdp,state_dict_type:sharded}"])
def test_sharded_checkpoints_are_announced(launch_cli, toy_recipe, gpu_partition, strategy):
    out = dry_run(launch_cli, toy_recipe, *SLURM_GPUS, strategy)
    block = devices_block(out)
    assert "checkpoints:    sharded: a folder per checkpoint, one shard file per rank" in block
    assert "process group:  nccl" in block


def test_one_cpu_process_has_no_devices_block(launch_cli, toy_recipe):
    assert "=== devices" not in dry_run(launch_cli, toy_recipe)


def test_jobs_that_differ_each_show_their_own(launch_cli, toy_recipe):
    out = dry_run(launch_cli, toy_recipe, "resources.processes_per_node=2", "-m",
                  "+trainer.precision=bf16-mixed,16")
    assert "=== devices" not in out and out.count("devices: 1 node(s) x 2 CPU") == 2
    assert "precision:      16 (trainer.precision, passed to the Trainer as it is; " \
           "Lightning reads it as 16-mixed; on CPUs Lightning uses bf16-mixed instead)" in out


def test_a_gpu_count_the_resources_do_not_give_is_refused(launch_cli, toy_recipe,
                                                          gpu_partition):
    line = rejected(launch_cli, toy_recipe, *SLURM_GPUS, "+trainer.devices=2")
    assert "key 'trainer.devices'" in line
    assert "trainer.devices=2 contradicts the resources, which give 4" in line
    assert "set resources.gpus_per_node=2" in line


@pytest.mark.parametrize("overrides,words", [
    (("+trainer.strategy={name:ddp,process_group_backend:nccl}",
      "resources.processes_per_node=2"),
     ("key 'trainer.strategy.process_group_backend'", "nccl needs GPUs")),
    (("+trainer.strategy={name:ddp,process_group_backend:ncll}",
      "resources.processes_per_node=2"),
     ("key 'trainer.strategy.process_group_backend'", "'ncll' is not a process group")),
    (("resources.nodes=2",), ("key 'resources.nodes'", "local executor")),
    (("hydra/launcher=slurm", "resources.gpus_per_node=2", "+cluster.sbatch={gres:gpu:1}"),
     ("key 'cluster.sbatch.gres'", "set resources.gpus_per_node")),
])
def test_options_the_job_could_not_start_with_are_refused(launch_cli, toy_recipe,
                                                          gpu_partition, overrides, words):
    line = rejected(launch_cli, toy_recipe, *overrides)
    assert all(w in line for w in words), line


def test_accelerator_cuda_means_the_gpus_of_the_resources(launch_cli, toy_recipe,
                                                          gpu_partition):
    out = dry_run(launch_cli, toy_recipe, *SLURM_GPUS, "+trainer.accelerator=cuda")
    assert "accelerator:    gpu" in devices_block(out)
    line = rejected(launch_cli, toy_recipe, "+trainer.accelerator=cuda")
    assert "key 'trainer.accelerator'" in line
