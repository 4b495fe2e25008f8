"""launcher: run ESPnet3-style Lightning recipes locally or on SLURM from one config.

Importing the package is cheap on purpose: `launch --help` and `launch status`
must not pay for torch. Heavy modules are imported where they are used.
"""

__version__ = "0.1.0"
