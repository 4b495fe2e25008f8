"""B6: DDP on CPU: throughput of 1 against 2 processes (gloo).

A model large enough for the step to be mostly compute, trained with 1 and
with 2 processes on this machine, by the launcher (`resources.
processes_per_node=2`: two ranks started by the local executor, DDP over
gloo) and by the hand-written Lightning script (`--devices 2`: Lightning
starts the second process itself). Throughput is samples per second over
all ranks (steps/s of rank 0 x batch per rank x ranks), after a warm-up.

The 1-process run is pinned to one thread, so that 1 process uses one core
and 2 processes two; the 2-process runs set nothing (Lightning gives each
rank cores / processes threads).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from b1_overhead import Model, lightning_command, shared_command
from common import (
    EVENTS_ENV,
    BenchError,
    Context,
    Figure,
    Section,
    bench_env,
    interleaved,
    last_event,
    run,
    steps_per_s,
)

PINNED = 1  # threads of the 1-process run: one core, against two for 2 processes


def model(quick: bool) -> Model:
    return Model("ddp", 256, 1024, 4, 512, 4 if quick else 10)


def throughput(argv: list[str], events: Path, batch_size: int, world: int,
               threads: int | None) -> dict[str, float]:
    """Samples/s over all ranks, and the torch threads rank 0 trained with."""
    run(argv, env=bench_env({EVENTS_ENV: str(events)}, threads=threads), timeout=600)
    record = last_event(events, "steps")
    if record.get("world_size") != world:
        raise BenchError(f"{events.name}: world size {record.get('world_size')}, not {world}")
    steps = record["steps"]
    return {"rate": steps_per_s(steps, max(2, len(steps) // 5)) * batch_size * world,
            "threads": float(record.get("threads", "nan"))}


def launch_argv(m: Model, exp_root: Path, world: int) -> list[str]:
    argv = shared_command(m, exp_root)
    size = f"dataset.train.size={m.steps * m.batch_size * world}"
    argv = [size if a.startswith("dataset.train.size=") else a for a in argv]
    return [*argv, f"resources.processes_per_node={world}"] if world > 1 else argv


def script_argv(m: Model, out: Path, world: int) -> list[str]:
    return [*lightning_command(m, out), "--devices", str(world)]


def run_section(ctx: Context) -> Section:
    m = model(ctx.quick)
    section = Section("B6", "DDP on CPU, gloo (samples/s over all ranks, higher is better)")
    work = ctx.folder("b6")
    ctx.log(f"B6 {m.parameters:,} parameters, batch {m.batch_size} per process x {ctx.reps}")

    def path(name: str, argv_of: Callable[[Path, int], list[str]],
             world: int) -> Callable[[int], dict[str, float]]:
        return lambda rep: throughput(argv_of(work / f"{name}.{rep}", world),
                                      work / f"{name}.{rep}.jsonl", m.batch_size, world,
                                      threads=PINNED if world == 1 else None)

    launch, script = partial(launch_argv, m), partial(script_argv, m)
    # --quick: only the launcher's 2-process path, to show that it runs.
    paths = {} if ctx.quick else {"launch1": path("launch1", launch, 1)}
    paths["launch2"] = path("launch2", launch, 2)
    if not ctx.quick:
        paths["script2"] = path("script2", script, 2)
    samples = interleaved(ctx.reps, paths)

    def figure(key: str, name: str, baseline: Figure | None = None) -> Figure:
        return section.add(Figure(name, [s["rate"] for s in samples[key]], "samples/s",
                                  higher_is_better=True, baseline=baseline))

    launch1 = figure("launch1", "launch, 1 process (1 thread)") if "launch1" in samples \
        else None
    launch2 = figure("launch2", "launch, 2 processes (ddp, gloo)", baseline=launch1)
    if "script2" in samples:
        script2 = figure("script2", "hand-written Lightning, 2 processes (ddp, gloo)")
        figure("launch2", "launch vs hand-written Lightning, 2 processes", baseline=script2)
    threads = {key: sorted({int(s["threads"]) for s in samples[key]}) for key in samples}
    section.notes.append(
        "Threads: the 1-process run is pinned to one thread (OMP_NUM_THREADS=1), so that 1 "
        "process uses one core and 2 processes two. The 2-process runs set nothing; torch "
        "threads per process were then "
        + ", ".join(f"{key}: {'/'.join(map(str, n))}" for key, n in threads.items())
        + " (Lightning's DDP launcher sets cores / processes, also for ranks the launcher "
        "started).")
    if launch2.ratio:
        section.notes.append(
            f"Scaling from 1 to 2 processes with the launcher: {launch2.ratio:.2f}x "
            f"({m.parameters:,} parameters, batch {m.batch_size} per process, on the 2-core "
            "machine shared with other work: see the load average above). Each step "
            f"all-reduces {4 * m.parameters / 2**20:.0f} MB of gradients over gloo.")
    section.notes.append(
        "GPU (NCCL): no GPU machine was lent to this task, so B1 and B6 were not run on a "
        "GPU; the figures above are CPU and gloo only.")
    section.profile_argv = launch_argv(m, work / "profile", 2)
    return section
