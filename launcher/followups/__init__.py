"""Following what was launched: status, logs, cancel, retry, report. Never imports torch."""
