"""B1: training-loop overhead of the shared path against hand-written code.

Three paths train the same MLP on the same data with the same batch size and
seed, each in a fresh process:

- shared path: `launch bench/recipe ...` (launcher + `ESPnetLightningModule`
  + `ESPnet3LightningTrainer`, a local single run, in the `launch` process);
- hand-written Lightning: `bench/baselines/lightning_script.py`;
- plain PyTorch: `bench/baselines/torch_loop.py`.

Steps per second is measured inside each process by the same step clock
(`bench/recipe/src/clock.py`), over the steps after a warm-up, so process
start-up (B2) is not part of it. A small model shows per-step overhead; a
large one shows what it costs when the step itself is real work.

With `BENCH_DEVICE=gpu` in the environment, all three paths train on one GPU
(the shared path with `resources.gpus_per_node=1`, the baselines with
`--device cuda`); `bench/gpu_check.py` runs B1 so.
"""

from __future__ import annotations

import itertools
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    BASELINES,
    EVENTS_ENV,
    LAUNCH,
    PYTHON,
    RECIPE,
    Context,
    Figure,
    Section,
    bench_env,
    fastest_window_ms,
    last_event,
    median_step_ms,
    run,
    side_by_side,
    steps_per_s,
)

TARGET_RATIO = 0.97  # shared path within 3% of hand-written Lightning
THREADS = 1  # OpenMP threads per process; see bench_env
# The small model's 3% target is finer than the run-to-run noise of a shared machine:
# more repetitions make its medians steadier (see side_by_side, too).
SMALL_REPS = 5
PROFILE_FROM = 10  # the step clock profiles the loop from this step (recipe/src/timing.py)
# The shared Trainer's last-checkpoint callback, which also carries its per-step duties.
DUTIES_CALLBACK = "LastCheckpoint"
DEVICE_ENV = "BENCH_DEVICE"  # "gpu": every B1 path trains on one GPU; default: the CPU


def on_gpu() -> bool:
    return os.environ.get(DEVICE_ENV, "cpu").lower() == "gpu"


def device_args(argv: list[str], shared: bool = False) -> list[str]:
    """`argv` of a B1 path, told to train on one GPU when `BENCH_DEVICE=gpu`."""
    if not on_gpu():
        return argv
    return [*argv, "resources.gpus_per_node=1"] if shared else [*argv, "--device", "cuda"]


@dataclass(frozen=True)
class Model:
    name: str
    dim: int
    hidden: int
    layers: int
    batch_size: int
    steps: int

    @property
    def parameters(self) -> int:
        widths = [self.dim] + [self.hidden] * self.layers + [1]
        return sum(a * b + b for a, b in itertools.pairwise(widths))

    def script_args(self) -> list[str]:
        return ["--dim", str(self.dim), "--hidden", str(self.hidden), "--layers",
                str(self.layers), "--batch-size", str(self.batch_size), "--steps",
                str(self.steps)]

    def overrides(self) -> list[str]:
        return [f"model.dim={self.dim}", f"model.hidden={self.hidden}",
                f"model.layers={self.layers}", f"dataloader.batch_size={self.batch_size}",
                f"dataset.train.size={self.steps * self.batch_size}",
                f"trainer.max_steps={self.steps}"]


def models(quick: bool) -> list[Model]:
    if quick:  # the small model only: process start-up dominates a quick run
        return [Model("small", 32, 64, 2, 32, 200)]
    return [Model("small", 32, 64, 2, 32, 2000), Model("large", 256, 1024, 4, 128, 60)]


def shared_command(model: Model, exp_root: Path) -> list[str]:
    return [LAUNCH, str(RECIPE), f"exp_root={exp_root}", *model.overrides()]


def lightning_command(model: Model, out: Path, idle_callbacks: int = 0) -> list[str]:
    return [PYTHON, str(BASELINES / "lightning_script.py"), *model.script_args(),
            "--out", str(out), "--idle-callbacks", str(idle_callbacks)]


def ablation_command(model: Model, exp_root: Path) -> list[str]:
    """The shared path without its per-step duties: Lightning's default checkpoint callback
    takes the place of the one that carries them."""
    return [*shared_command(model, exp_root), "+trainer._target_=src.ablation.WithoutCallbacks",
            f"+trainer.without=[{DUTIES_CALLBACK}]"]


def torch_command(model: Model) -> list[str]:
    return [PYTHON, str(BASELINES / "torch_loop.py"), *model.script_args()]


def train_once(ctx: Context, argv: list[str], events: Path, cpu: int | None = None
               ) -> dict[str, Any]:
    """Run one training process (on core `cpu`, if given); return its `steps` record."""
    run(argv, env=bench_env({EVENTS_ENV: str(events)}, threads=THREADS), timeout=600, cpu=cpu)
    return last_event(events, "steps")


def measure_model(ctx: Context, model: Model) -> dict[str, list[dict[str, Any]]]:
    work = ctx.folder("b1", model.name)
    paths = {
        "torch": lambda rep, cpu: train_once(ctx, device_args(torch_command(model)),
                                             work / f"torch.{rep}.jsonl", cpu),
        "lightning": lambda rep, cpu: train_once(
            ctx, device_args(lightning_command(model, work / f"pl.{rep}")),
            work / f"pl.{rep}.jsonl", cpu),
        "shared": lambda rep, cpu: train_once(
            ctx, device_args(shared_command(model, work / f"exp.{rep}"), shared=True),
            work / f"shared.{rep}.jsonl", cpu),
    }
    # The large model runs one path at a time: two compute-bound runs side by side
    # share the memory bandwidth, and their different start-up times would decide
    # which of them gets it to itself for part of its run.
    pairs: list[tuple[str, str | None]] = [("lightning", "shared"), ("torch", None)] \
        if model.name == "small" else [("lightning", None), ("shared", None), ("torch", None)]
    if model.name == "small" and not ctx.quick:  # where the per-step costs come from
        paths["idle"] = lambda rep, cpu: train_once(
            ctx, device_args(lightning_command(model, work / f"idle.{rep}", 1)),
            work / f"idle.{rep}.jsonl", cpu)
        paths["ablation"] = lambda rep, cpu: train_once(
            ctx, device_args(ablation_command(model, work / f"ablation.{rep}"), shared=True),
            work / f"ablation.{rep}.jsonl", cpu)
        pairs = [("lightning", "shared"), ("idle", "ablation"), ("torch", None)]
    reps = max(ctx.reps, SMALL_REPS) if model.name == "small" and not ctx.quick else ctx.reps
    ctx.log(f"B1 {model.name} model ({model.parameters:,} parameters, batch "
            f"{model.batch_size}, {model.steps} steps) x {reps}"
            f"{' on one GPU' if on_gpu() else ''}")
    return side_by_side(reps, pairs, paths)


def spread_of(ours: list[float], theirs: list[float]) -> str:
    """Range of the ratio between repetitions run side by side."""
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return f"{min(ratios):.3f} to {max(ratios):.3f}"


def run_section(ctx: Context) -> Section:
    section = Section("B1", "Training-loop overhead (steps/s, higher is better)")
    for model in models(ctx.quick):
        records = measure_model(ctx, model)
        warmup = max(3, model.steps // 10)

        def rates(name: str, records: dict = records, warmup: int = warmup) -> list[float]:
            return [steps_per_s(r["steps"], warmup) for r in records[name]]

        def step_ms(name: str, records: dict = records, warmup: int = warmup) -> list[float]:
            return [median_step_ms(r["steps"], warmup) for r in records[name]]

        def fastest_ms(name: str, records: dict = records, warmup: int = warmup
                       ) -> list[float]:
            return [fastest_window_ms(r["steps"], warmup) for r in records[name]]

        label = f"{model.name} ({model.parameters:,} params, batch {model.batch_size})"
        torch_fig = section.add(Figure(f"{label}: plain PyTorch loop", rates("torch"),
                                       "steps/s", higher_is_better=True))
        pl_fig = section.add(Figure(f"{label}: hand-written Lightning", rates("lightning"),
                                    "steps/s", higher_is_better=True, baseline=torch_fig))
        shared = section.add(Figure(f"{label}: shared path (launch)", rates("shared"),
                                    "steps/s", higher_is_better=True, baseline=pl_fig,
                                    target=f">= {TARGET_RATIO}x hand-written Lightning"))
        shared.holds = shared.ratio is not None and shared.ratio >= TARGET_RATIO
        typical = statistics.median(step_ms("shared")) / statistics.median(step_ms("lightning"))
        section.notes.append(
            f"{model.name}: the shared path's typical (median) step takes "
            f"{100 * (typical - 1):+.1f}% against hand-written Lightning; the steps/s ratio "
            f"of single repetitions spans {spread_of(rates('shared'), rates('lightning'))}, "
            "which is how far the machine's other work moves a 3% target.")
        section.add(Figure(f"{label}: shared path vs plain PyTorch", rates("shared"),
                           "steps/s", higher_is_better=True, baseline=torch_fig))
        pl_ms = section.add(Figure(f"{label}: hand-written Lightning, median step",
                                   step_ms("lightning"), "ms"))
        section.add(Figure(f"{label}: shared path, median step", step_ms("shared"), "ms",
                           baseline=pl_ms))
        pl_fast = section.add(Figure(f"{label}: hand-written Lightning, fastest 100 steps",
                                     fastest_ms("lightning"), "ms/step"))
        section.add(Figure(f"{label}: shared path, fastest 100 steps", fastest_ms("shared"),
                           "ms/step", baseline=pl_fast))
        if "idle" in records:
            section.add(Figure(f"{label}: ablation, hand-written + 1 callback doing nothing",
                               rates("idle"), "steps/s", higher_is_better=True,
                               baseline=pl_fig))
            section.add(Figure(f"{label}: ablation, shared path without its per-step duties",
                               rates("ablation"), "steps/s", higher_is_better=True,
                               baseline=pl_fig))
        worst = TARGET_RATIO / shared.ratio if shared.ratio else None
        if worst is not None and (section.worst is None or worst > section.worst):
            section.worst = worst
            section.profile_argv = device_args(
                shared_command(model, ctx.work / "b1" / "profile"), shared=True)
            section.profile_env = {"OMP_NUM_THREADS": str(THREADS)}
            # Per step: the module's hooks, the callbacks and Lightning's dispatch of them.
            section.profile_focus = ("launcher/|_call_callback_hooks|profiler.py.*profile|"
                                     "state_key|training_step|on_train_batch")
            section.profile_baseline_argv = device_args(
                lightning_command(model, ctx.work / "b1" / "pl"))
            section.profile_steps = model.steps - PROFILE_FROM
            section.profile_always = True
    if on_gpu():
        section.notes.append(f"{DEVICE_ENV}=gpu: every path trained on one GPU "
                             "(32-bit), its data loaded on the CPU.")
    section.notes.append(
        f"Each path runs in a fresh process with OMP_NUM_THREADS={THREADS}; steps/s is the "
        "mean rate over the steps after a 10% warm-up, measured by the same step clock in "
        "every path; 'median step' is the typical step time, robust to the odd step lost "
        "to other processes on the machine; 'fastest 100 steps' is the mean step of a "
        "run's fastest 100 consecutive steps, what a step costs when nothing else gets in "
        "the way.")
    section.notes.append(
        "Side by side (small model): hand-written Lightning and the shared path run at the "
        "same time, each on a core of its own (swapped every repetition), and so do the two "
        "ablations; the plain PyTorch loop runs alone. The large model's paths run one "
        "after the other: side by side, two compute-bound runs would share the memory "
        "bandwidth, and their different start-up times would decide which of them has it "
        "to itself for part of its run. This machine is a virtual one whose host also "
        "runs other work: measured one after the other, whole runs of either path were at "
        "times 10-30% slower, which moved the medians of a few runs by more than the 3% "
        "target; side by side, both meet the same conditions.")
    section.notes.append(
        "The hand-written module logs the epoch mean of the training loss, as the shared "
        "module does; both Trainers run with a CSV logger and no progress bar.")
    section.notes.append(
        "Ablations (small model): Lightning calls every hook of every callback, each inside "
        "a profiler context, whether the callback implements it or not, so a callback costs "
        "per step even when it does nothing (first ablation row). So the shared Trainer adds "
        "none: its per-step duties (progress, preemption) ride on the callback that saves "
        f"last.ckpt ({DUTIES_CALLBACK}, launcher/run_hooks.py), as a hand-written script has "
        "Lightning's default checkpoint callback. The second row replaces that callback by "
        "Lightning's default one: the cost of the duties themselves "
        "(bench/recipe/src/ablation.py).")
    return section
