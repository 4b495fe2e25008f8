"""Hydra finds plugins only in the `hydra_plugins` package: these names are what
`hydra/launcher=local` and `hydra/launcher=slurm` select, and the search path that
lets any Hydra app select them. The work is done in `launcher.executors`.
`hydra/sweeper=planned` is the grid sweeper `launch` uses when none is chosen."""

from collections.abc import Sequence

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from launcher.compat.hydra import basic_sweeper_class
from launcher.executors import local, slurm

CONFIGS = "pkg://hydra_plugins.launcher_executors.conf"


class LauncherSearchPath(SearchPathPlugin):
    """Puts `hydra/launcher=local|slurm` and `hydra/sweeper=planned` behind every app's
    own configs, so an installed launcher needs no `hydra.searchpath` override."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="launcher", path=CONFIGS)


class LocalSweepLauncher(local.LocalSweepLauncher):
    """Jobs as local subprocesses, one per rank."""


class SlurmSweepLauncher(slurm.SlurmSweepLauncher):
    """Jobs as one SLURM job array, one srun task per rank."""


class PlannedSweeper(basic_sweeper_class()):
    """Hydra's grid sweeper, minus its re-composition of each job before launch.

    BasicSweeper composes every job once more to validate it (~45 ms a job);
    `launch` has already composed and checked exactly these jobs.
    """

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        return None
