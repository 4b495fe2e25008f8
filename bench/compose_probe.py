"""Per-job config composition cost of a sweep, in one process (used by B3).

    python bench/compose_probe.py RECIPE JOBS   -> one JSON line, milliseconds per job

- `plan`: what `launch -m` does for each job before submitting: compose the
  recipe config with the job's overrides and check it (`launcher.launch.plan`);
- `compose`: the composition alone (`launcher.recipe.compose`, one Hydra
  initialisation per job);
- `hydra_compose`: Hydra's compose for each job inside one initialisation;
- `values_only`: the config composed once, then each job's value overrides
  applied to a copy, as Hydra applies value overrides itself (proposed for
  sweeps whose jobs differ only in values; see bench/proposed_fixes.py).

Each is timed on a sweep of JOBS jobs after a first, untimed, one-job call
that pays the imports.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path


def sweep_values(jobs: int) -> list[str]:
    return [f"optim.lr={(i + 1) * 1e-4:.4f}" for i in range(jobs)]


def per_job_ms(seconds: float, jobs: int) -> float:
    return 1e3 * seconds / jobs


def main(recipe_path: str, jobs: int) -> dict[str, float]:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from launcher.launch import plan, with_launcher_keys
    from launcher.recipe import SHARED_CONFIGS, compose, find_recipe

    recipe = find_recipe(recipe_path)
    values = sweep_values(jobs)
    sweep = with_launcher_keys(["optim.lr=" + ",".join(v.split("=")[1] for v in values),
                                "exp_root=/tmp/unused-bench-exp"])
    plan(recipe, with_launcher_keys([values[0], "exp_root=/tmp/unused-bench-exp"]), True)

    start = time.perf_counter()
    planned = plan(recipe, sweep, True)
    result = {"plan": per_job_ms(time.perf_counter() - start, len(planned))}

    start = time.perf_counter()
    for value in values:
        compose(recipe, [value])
    result["compose"] = per_job_ms(time.perf_counter() - start, jobs)

    start = time.perf_counter()
    with initialize_config_dir(config_dir=str(recipe.conf_dir), version_base="1.3"):
        for value in values:
            hydra_compose(config_name=recipe.config_name, overrides=[value, SHARED_CONFIGS])
    result["hydra_compose"] = per_job_ms(time.perf_counter() - start, jobs)

    start = time.perf_counter()
    base = compose(recipe, [])
    parser = OverridesParser.create()
    for value in values:
        config = copy.deepcopy(base)
        ConfigLoaderImpl._apply_overrides_to_config(parser.parse_overrides([value]), config)
    result["values_only"] = per_job_ms(time.perf_counter() - start, jobs)
    if config != compose(recipe, [values[-1]]):
        raise SystemExit("compose_probe: the values-only config differs from a full compose")
    return result


if __name__ == "__main__":
    print(json.dumps(main(str(Path(sys.argv[1])), int(sys.argv[2]))))
