"""Searches that learn: an Optuna study on the shared filesystem, and slots that pull
its trials (`launcher.plan.search_plan` plans one, `launcher.job.search_worker` runs
the slots). Nothing here imports torch."""
