"""`python run.py [overrides]` inside this folder does what `launch egs3/toy2d/gan1` does."""

import sys
from pathlib import Path

from launcher.cli import main

if __name__ == "__main__":
    sys.exit(main([str(Path(__file__).resolve().parent), *sys.argv[1:]]))
