"""The LightningModule and what it needs: optimizers by name, exact resume."""
