"""Datasets, dataloaders and a batch order that resumes exactly."""
