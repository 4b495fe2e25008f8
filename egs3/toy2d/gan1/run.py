"""`python run.py [ARGS]` inside this folder does what `launch egs3/toy2d/gan1` does, and takes
ESPnet3's flags too: `--stages collect_stats train --training_config conf/config.yaml
--dry_run`."""

import sys
from pathlib import Path

from launcher.run_script import run_recipe

if __name__ == "__main__":
    sys.exit(run_recipe(Path(__file__).resolve().parent, sys.argv[1:]))
