"""Per-job config composition cost of a sweep, in one process (used by B3).

    python bench/compose_probe.py RECIPE JOBS   -> one JSON line, milliseconds per job

- `plan`: what `launch -m` does for each job before submitting: compose the
  recipe config with the job's overrides and check it (`launcher.plan.planning.plan`);
- `compose_sweep`: the composition alone, as `plan` does it: the first job
  composed, each other job its copy with its own values applied;
- `compose`: each job composed from the files (`launcher.plan.recipe.compose`,
  one Hydra initialisation per job), as `plan` did before `compose_sweep`;
- `hydra_compose`: Hydra's compose for each job inside one initialisation.

Each is timed on a sweep of JOBS jobs after a first, untimed, one-job call
that pays the imports (and remembers the checks of the recipe's classes).
"""

from __future__ import annotations

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

    from launcher.conf import SEARCH_PATH as SHARED_CONFIGS
    from launcher.plan.overrides import expand_sweep, with_launcher_keys
    from launcher.plan.planning import plan
    from launcher.plan.recipe import compose, compose_sweep, find_recipe

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
    configs = compose_sweep(recipe, expand_sweep(sweep))
    result["compose_sweep"] = per_job_ms(time.perf_counter() - start, jobs)
    if configs[-1] != compose(recipe, expand_sweep(sweep)[-1]):
        raise SystemExit("compose_probe: compose_sweep differs from a full compose")
    return result


if __name__ == "__main__":
    print(json.dumps(main(str(Path(sys.argv[1])), int(sys.argv[2]))))
