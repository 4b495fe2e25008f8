"""The shared System and its training helpers."""
