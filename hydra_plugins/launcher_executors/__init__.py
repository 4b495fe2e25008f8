"""Hydra finds launchers only in the `hydra_plugins` package: these names are
what `hydra/launcher=local` and `hydra/launcher=slurm` select. The work is
done in `launcher.submit`."""

from launcher import submit


class LocalSweepLauncher(submit.LocalSweepLauncher):
    """Jobs as local subprocesses, one per rank."""


class SlurmSweepLauncher(submit.SlurmSweepLauncher):
    """Jobs as one SLURM job array, one srun task per rank."""
