"""A side environment for Hydra's Optuna sweeper (hydra-optuna-sweeper), made once.

hydra-optuna-sweeper 1.3 needs optuna < 3, the launcher's own search optuna >= 4: the
two cannot share `.venv`. The side environment `.venv-hydra-optuna/` holds only
optuna 2.10 and the sweeper; a `.pth` file in its site-packages adds `.venv`'s
site-packages after its own, so torch, Lightning, Hydra, submitit and the launcher
(installed editable there) are the ones of `.venv`, and optuna is found first here.

    from hydra_optuna_env import hydra_optuna_python
    python = hydra_optuna_python()   # <repo>/.venv-hydra-optuna/bin/python

Made in a folder of its own and renamed into place when complete (with a stamp
file), under a file lock: two processes asking at once make it once, and an
interrupted build never leaves a half environment under the final name. Tests use
it through the `hydra_optuna_python` fixture (tests/conftest.py), benchmarks by
importing this module (bench/b7_search.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAIN_VENV = ROOT / ".venv"
SIDE_VENV = ROOT / ".venv-hydra-optuna"
REQUIREMENT = "hydra-optuna-sweeper==1.3.0"
STAMP = "hydra-optuna.stamp"
PTH = "zz_launcher_main_venv.pth"  # read after the other .pth files here
BUILD = 2  # raised when _build changes: a side environment made before is made again
# Installed here and nowhere else; everything else must come from .venv.
OWN = {"optuna", "hydra-optuna-sweeper"}
CHECK = ("import optuna, hydra_plugins.hydra_optuna_sweeper, launcher, torch; "
         "print(optuna.__version__)")


class SideEnvError(RuntimeError):
    """The side environment could not be made; the message says which step failed."""


def _step(argv: list[str], what: str, timeout: float = 900) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env={k: v for k, v in os.environ.items()
                               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")})
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise SideEnvError(f"{what} failed (exit {done.returncode}): {' '.join(argv)}\n{tail}")
    return done.stdout


def _main_python() -> Path:
    python = MAIN_VENV / "bin" / "python"
    if not python.exists():
        raise SideEnvError(f"{python} does not exist: make the main environment first "
                           "(make test, or python -m venv .venv && pip install -e '.[dev]')")
    return python


def _main_facts() -> dict:
    """The main environment's base python, site-packages and installed distributions."""
    out = _step([str(_main_python()), "-c",
                 "import json, sys, sysconfig, importlib.metadata as m; "
                 "print(json.dumps({'base': sys._base_executable, 'prefix': sys.prefix, "
                 "'site': sysconfig.get_path('purelib'), "
                 "'dists': sorted({(d.metadata['Name'] or '').lower().replace('_', '-'): "
                 "d.version for d in m.distributions() if d.metadata['Name']}.items())}))"],
                "reading the main environment")
    return json.loads(out.strip().splitlines()[-1])


def _stamp_text(facts: dict) -> str:
    return json.dumps({"requirement": REQUIREMENT, "base": facts["base"],
                       "main_site": facts["site"], "main_prefix": facts["prefix"],
                       "build": BUILD}, sort_keys=True)


def _ready(facts: dict) -> bool:
    stamp = SIDE_VENV / STAMP
    return stamp.is_file() and stamp.read_text() == _stamp_text(facts)


def _build(facts: dict, target: Path) -> None:
    """Make the side environment in `target` (a folder of its own, renamed later)."""
    shutil.rmtree(target, ignore_errors=True)
    # No pip, setuptools of its own: those of .venv would be shadowed by older ones.
    _step([facts["base"], "-m", "venv", "--without-pip", str(target)], "python -m venv")
    python = target / "bin" / "python"
    site_dir = Path(_step([str(python), "-c",
                           "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          "reading the side site-packages").strip())
    # The .pth first: pip then sees what .venv has as installed and only adds what is
    # missing. The constraints hold every distribution of .venv at its version, so pip
    # fails rather than install another torch or numpy here, which would come first.
    # .venv's prefix joins site.PREFIXES, so site.getsitepackages() lists its
    # site-packages as installed, as in .venv itself: the launcher's code snapshot
    # copies only what is not installed (launcher/snapshot/files.py).
    (site_dir / PTH).write_text(f'import site; site.addsitedir("{facts["site"]}"); '
                                f'site.PREFIXES.append("{facts["prefix"]}")\n')
    constraints = target / "constraints.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in facts["dists"]
                                   if name not in OWN and name != "launcher"))
    _step([str(_main_python()), "-m", "pip", "--python", str(python), "install", "-q",
           "-c", str(constraints), REQUIREMENT],
          f"pip install {REQUIREMENT}")
    strays = sorted(p.name for p in site_dir.iterdir()
                    if p.name.split("-")[0].lower() in ("torch", "numpy", "hydra_core",
                                                        "omegaconf", "pytorch_lightning"))
    if strays:
        raise SideEnvError(f"pip installed {', '.join(strays)} into {site_dir}; these must "
                           "come from .venv")
    version = _step([str(python), "-c", CHECK], "importing optuna, the sweeper, launcher "
                    "and torch").strip().splitlines()[-1]
    if not version.startswith("2.10."):
        raise SideEnvError(f"the side environment has optuna {version}, not 2.10.x")
    (target / STAMP).write_text(_stamp_text(facts))


def hydra_optuna_python() -> Path:
    """The side environment's python, made first if it is not there (once, in well under
    a minute: only optuna 2.10 and the sweeper are downloaded)."""
    facts = _main_facts()
    python = SIDE_VENV / "bin" / "python"
    if _ready(facts):
        return python
    with open(ROOT / f"{SIDE_VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be making it: wait
        if _ready(facts):
            return python
        building = ROOT / f"{SIDE_VENV.name}.building-{os.getpid()}"
        try:
            _build(facts, building)
            if SIDE_VENV.exists():  # stale (other requirement or base python)
                stale = ROOT / f"{SIDE_VENV.name}.stale-{os.getpid()}"
                SIDE_VENV.rename(stale)
                shutil.rmtree(stale, ignore_errors=True)
            building.rename(SIDE_VENV)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return python


if __name__ == "__main__":
    try:
        print(hydra_optuna_python())
    except SideEnvError as exc:
        sys.exit(f"hydra_optuna_env: {exc}")
