"""The configs of `hydra/launcher=local|slurm` and `hydra/sweeper=planned`, put on every
Hydra app's search path by `LauncherSearchPath` once the launcher is installed."""
