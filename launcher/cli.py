"""`launch`: run a recipe locally or on SLURM, one run or a sweep.

Kept free of heavy imports: `launch --help` must answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

USAGE = """\
launch RECIPE [OVERRIDES ...] [-m] [--config-name NAME]

Run the recipe in folder RECIPE (e.g. egs3/tones/asr1) with its config
RECIPE/conf/config.yaml and Hydra-style OVERRIDES.

examples:
  launch egs3/tones/asr1                                  run all default stages
  launch egs3/tones/asr1 stages=[collect_stats,train]     choose stages
  launch egs3/tones/asr1 trainer.max_epochs=3 optim.lr=1e-3
  launch egs3/tones/asr1 -m optim.lr=1e-3,3e-4            a sweep: one run per value

Each run gets its own folder, <exp_root>/<name from the overrides> (exp_root
defaults to RECIPE/exp): the resolved config.yaml, run.log (with the
traceback if it failed), metrics.csv, checkpoints/ (last.ckpt and the best
ones), stats/ and evaluate.json. Running the same command again continues
that run from its last checkpoint.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="launch", usage=USAGE, add_help=True,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help="recipe folder, e.g. egs3/tones/asr1")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, key=value")
    parser.add_argument("-m", "--multirun", action="store_true",
                        help="sweep: one run per combination of comma-separated values")
    parser.add_argument("-cn", "--config-name", default=None,
                        help="config file in RECIPE/conf (default: config)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    from launcher.errors import LauncherError

    try:
        from launcher.launch import launch

        run_dirs = launch(args.recipe, args.overrides, config_name=args.config_name,
                          multirun=args.multirun)
    except LauncherError as exc:
        print(f"launch: error: {exc}", file=sys.stderr)
        return 2
    for run_dir in run_dirs:
        print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
