"""The job runtime: what runs inside each job, on every rank."""
