"""Executors: where jobs run (this process, local subprocesses, SLURM) and what was submitted."""
