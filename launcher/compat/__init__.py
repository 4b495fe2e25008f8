"""The only places that touch private APIs of Hydra, submitit and Lightning.

One module per library; each use is a small function with a docstring saying
what it relies on, and tests/test_compat.py fails with a clear message when
an upstream release changes that behaviour. pyproject.toml bounds the
versions those tests have seen.
"""
