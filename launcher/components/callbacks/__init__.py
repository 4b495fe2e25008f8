"""Callbacks: checkpoints (last, best, periodic), progress, preemption."""
