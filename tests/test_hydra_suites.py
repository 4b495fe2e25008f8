"""Hydra's own launcher test suites, applied to `hydra/launcher=local` and `slurm` the way
hydra-submitit-launcher applies them to its launchers: any `@hydra.main` app may use
ours. The configs are found through the installed search-path plugin, with no
`hydra.searchpath` override. On SLURM the suites wait for results (`wait=true`)."""

from __future__ import annotations

from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.search_path_plugin import SearchPathPlugin
from hydra.test_utils.launcher_common_tests import (
    BatchedSweeperTestSuite,
    IntegrationTestSuite,
    LauncherTestSuite,
)
from pytest import fixture, mark


@fixture(autouse=True)
def fresh_version_base():
    """As in a fresh process: no version_base chosen yet (launch's own runs choose 1.3 in
    the test process, which would change Hydra's defaults for the suites' apps)."""
    from hydra.version import _UNSPECIFIED_, VersionBase

    base = VersionBase.instance()
    before, base.version_base = base.version_base, _UNSPECIFIED_
    yield
    base.version_base = before


BATCHES = ["hydra/sweeper=basic", "hydra.sweeper.max_batch_size=2"]
QUIET = ["-m", "hydra/hydra_logging=disabled", "hydra/job_logging=disabled"]
SLURM_WAITS = ["hydra.launcher.wait=true"]


@mark.parametrize("name", ["LocalSweepLauncher", "SlurmSweepLauncher"])
def test_hydra_discovers_the_launchers(name):
    assert name in [c.__name__ for c in Plugins.instance().discover(Launcher)]


def test_hydra_discovers_the_search_path_of_their_configs():
    assert "LauncherSearchPath" in [c.__name__
                                    for c in Plugins.instance().discover(SearchPathPlugin)]


@mark.parametrize("launcher_name, overrides", [("local", [])])
class TestLocalLauncher(LauncherTestSuite):
    pass


@mark.parametrize("launcher_name, overrides", [("local", BATCHES)])
class TestLocalLauncherBatches(BatchedSweeperTestSuite):
    pass


@mark.parametrize("task_launcher_cfg, extra_flags", [({}, [*QUIET, "hydra/launcher=local"])])
class TestLocalLauncherIntegration(IntegrationTestSuite):
    pass


@mark.slurm
@mark.usefixtures("slurm_cluster")
@mark.parametrize("launcher_name, overrides", [("slurm", SLURM_WAITS)])
class TestSlurmLauncher(LauncherTestSuite):
    pass


@mark.slurm
@mark.usefixtures("slurm_cluster")
@mark.parametrize("launcher_name, overrides", [("slurm", [*BATCHES, *SLURM_WAITS])])
class TestSlurmLauncherBatches(BatchedSweeperTestSuite):
    pass


@mark.slurm
@mark.usefixtures("slurm_cluster")
@mark.parametrize("task_launcher_cfg, extra_flags",
                  [({}, [*QUIET, "hydra/launcher=slurm", *SLURM_WAITS])])
class TestSlurmLauncherIntegration(IntegrationTestSuite):
    pass
