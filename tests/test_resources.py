"""One resource spec drives both the scheduler request and the Trainer."""

import pytest

from launcher.errors import ConfigError
from launcher.resources import (
    LOCAL_NO_LIMIT_MIN,
    SLURM_DEFAULT_TIME_MIN,
    ClusterProfile,
    Resources,
    reconcile_trainer,
)


def test_gpu_request_and_trainer_come_from_one_spec():
    spec = Resources(nodes=2, gpus_per_node=4, cpus_per_task=8, mem_gb=64, time_min=90,
                     partition="gpu")
    request = spec.scheduler_request("slurm")
    assert request == {"nodes": 2, "ntasks_per_node": 4, "cpus_per_task": 8, "time": 90,
                       "gpus_per_node": 4, "mem": "65536M", "partition": "gpu"}
    assert spec.trainer_options() == {"accelerator": "gpu", "devices": 4, "num_nodes": 2}
    assert spec.world_size == 8


def test_cpu_processes_and_local_request():
    spec = Resources(processes_per_node=2)
    assert spec.scheduler_request("local") == {"tasks_per_node": 2,
                                               "timeout_min": LOCAL_NO_LIMIT_MIN}
    assert spec.trainer_options() == {"accelerator": "cpu", "devices": 2, "num_nodes": 1}


def test_time_limit_applies_locally_only_when_asked():
    assert Resources().scheduler_request("slurm")["time"] == SLURM_DEFAULT_TIME_MIN
    assert Resources(time_min=5).scheduler_request("local")["timeout_min"] == 5
    # A workstation job is not stopped after an hour because SLURM needs a --time.
    assert Resources().scheduler_request("local")["timeout_min"] >= 365 * 24 * 60


def test_cluster_profile_fills_what_the_resources_leave_open():
    cluster = ClusterProfile(partition="debug", account="lab", qos="normal")
    request = Resources(qos="high").scheduler_request("slurm", cluster)
    assert (request["partition"], request["account"], request["qos"]) == ("debug", "lab", "high")


def test_trainer_gets_device_counts_and_ddp():
    options = reconcile_trainer({"max_epochs": 3}, Resources(nodes=2))
    assert options == {"max_epochs": 3, "accelerator": "cpu", "devices": 1, "num_nodes": 2,
                       "strategy": "ddp"}
    fsdp = reconcile_trainer({"strategy": "fsdp", "accelerator": "auto"},
                             Resources(gpus_per_node=2))
    assert fsdp["strategy"] == "fsdp" and fsdp["accelerator"] == "gpu"


@pytest.mark.parametrize("trainer,message", [
    ({"devices": 4}, "set resources.processes_per_node=4"),
    ({"num_nodes": 2}, "set resources.nodes=2"),
    ({"accelerator": "gpu"}, "set resources.gpus_per_node"),
])
def test_contradictions_are_refused(trainer, message):
    with pytest.raises(ConfigError, match=message):
        reconcile_trainer(trainer, Resources())


def test_stating_the_same_value_twice_is_allowed():
    assert reconcile_trainer({"devices": 2}, Resources(processes_per_node=2))["devices"] == 2


@pytest.mark.parametrize("block,key", [
    ({"gpus": 2}, "resources.gpus"),
    ({"nodes": 0}, "resources.nodes"),
    ({"nodes": "2"}, "resources.nodes"),
    ({"gpus_per_node": 2, "processes_per_node": 4}, "resources.processes_per_node"),
    ({"partition": "debug\n#SBATCH --wrap=evil"}, "resources.partition"),
    ({"account": "lab $(rm -rf ~)"}, "resources.account"),
])
def test_bad_resource_values(block, key):
    with pytest.raises(ConfigError) as info:
        Resources.from_config(block)
    assert info.value.key == key


def test_cluster_profile_refuses_unsafe_sbatch_options():
    with pytest.raises(ConfigError, match=r"cluster\.sbatch"):
        ClusterProfile.from_config({"sbatch": {"mail-type": "END\n#SBATCH --x"}})
    with pytest.raises(ConfigError, match="unknown cluster setting 'partion'"):
        ClusterProfile.from_config({"partion": "x"})
