"""Profile the commands behind the missed targets with cProfile, for RESULTS.md.

Each section names the command behind its headline figure
(`Section.profile_argv`) and how far that figure is from its target
(`Section.worst`, above 1 when the target is missed). The missed ones, worst
first (two at most; the worst figure alone when every target holds), and
the training loop (B1, always) are run again under cProfile. Two excerpts
go into the report: the most expensive calls by cumulative time, and the
functions that explain the ratio (`Section.profile_focus`; the launcher's
own by default); for the training loop also the time per step each function
adds over the hand-written baseline, profiled the same way.
"""

from __future__ import annotations

import io
import pstats
import re
import sys
from pathlib import Path

from common import PYTHON, ROOT, Context, Section, bench_env, run
from shims import SchedulerShims

PROFILE_ENV = "BENCH_PROFILE"  # read by bench/recipe/src/timing.py
TOP = 22
OURS = ("/launcher/", "/hydra_plugins/launcher_executors/")


def missed_first(sections: list[Section], limit: int) -> list[Section]:
    """Sections to profile: the missed targets, worst first (at least the worst figure),
    then those profiled whatever their figure (the training loop)."""
    candidates = sorted((s for s in sections if s.profile_argv and s.worst is not None),
                        key=lambda s: s.worst, reverse=True)
    chosen = ([s for s in candidates if s.worst > 1] or candidates[:1])[:limit]
    return chosen + [s for s in candidates if s.profile_always and s not in chosen]


def short_argv(argv: list[str]) -> str:
    shown = " ".join(Path(a).name if a.startswith("/") and "=" not in a else a for a in argv)
    return shown if len(shown) <= 300 else shown[:300] + " ..."


def excerpt(stats: pstats.Stats, *restrictions: object) -> str:
    buffer = io.StringIO()
    stats.stream = buffer
    stats.sort_stats("cumulative").print_stats(*restrictions)
    lines = buffer.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    return "\n".join(short(line) for line in lines[start:] if line.strip())


def profile_worst(ctx: Context, sections: list[Section], limit: int = 2) -> str:
    """Markdown: for each missed target (worst first), the command and two excerpts."""
    parts = []
    for rank, section in enumerate(missed_first(sections, limit)):
        try:
            parts.append(profile_one(ctx, section, rank))
        except Exception as exc:  # a failed profile must not cost the figures
            parts.append(f"### {section.key}\n\nProfiling failed: {type(exc).__name__}: {exc}")
    return "\n\n".join(parts)


def profiled(ctx: Context, section: Section, argv: list[str], name: str) -> pstats.Stats:
    """Run `argv` under cProfile (scheduler wrappers on PATH, jobs cancelled after): the
    whole process, or with `profile_steps` the training loop alone (the step clock's
    profiler, recipe/src/timing.py)."""
    folder = ctx.folder("profile", section.key)
    output = folder / f"{name}.prof"
    shims = SchedulerShims(folder / f"shims.{name}")
    env = bench_env(section.profile_env)
    if section.profile_steps:
        env[PROFILE_ENV] = str(output)
        command = argv
    else:
        script = argv[1:] if argv[0] == PYTHON else argv  # cProfile runs the script itself
        command = [PYTHON, "-m", "cProfile", "-o", str(output), *script]
    try:
        run(command, env=shims.env(env), timeout=600)
    finally:
        shims.cancel_all()
    return pstats.Stats(str(output))


def by_function(stats: pstats.Stats) -> dict[str, tuple[int, float]]:
    """{function: (calls, own seconds)}, named without memory addresses."""
    table: dict[str, tuple[int, float]] = {}
    for (path, line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        key = re.sub(r" at 0x[0-9a-f]+", "", f"{short(path)}:{line}({name})")
        calls, own = table.get(key, (0, 0.0))
        table[key] = (calls + row[1], own + row[2])
    return table


def difference(stats: pstats.Stats, baseline: pstats.Stats, steps: int) -> str:
    """Functions by own time per step added over the baseline (both loop-only profiles)."""
    ours, theirs = by_function(stats), by_function(baseline)
    rows = []
    for key in set(ours) | set(theirs):
        (calls, own), (base_calls, base_own) = ours.get(key, (0, 0.0)), theirs.get(key, (0, 0.0))
        rows.append((own - base_own, key, calls / steps, base_calls / steps))
    rows.sort(reverse=True)
    lines = [f"{'added/step':>11}  {'calls/step':>10}  {'baseline':>8}  function"]
    lines += [f"{1e6 * added / steps:8.1f} us  {calls:>10.1f}  {base_calls:>8.1f}  {key}"
              for added, key, calls, base_calls in rows[:TOP]]
    lines.append(f"loop time per step under the profiler (which inflates small calls): "
                 f"{1e6 * stats.total_tt / steps:.0f} us here, "  # type: ignore[attr-defined]
                 f"{1e6 * baseline.total_tt / steps:.0f} us in the baseline")  # type: ignore[attr-defined]
    return "\n".join(lines)


def short(path: str) -> str:
    site = next((str(p) + "/" for p in map(Path, sys.path) if p.name == "site-packages"), "")
    return path.replace(site, "").replace(f"{ROOT}/", "")


def profile_one(ctx: Context, section: Section, rank: int) -> str:
    ctx.log(f"profiling {section.key}'s headline figure with cProfile")
    stats = profiled(ctx, section, section.profile_argv, "profile")
    total = stats.total_tt  # type: ignore[attr-defined]
    shown = short_argv(section.profile_argv)
    where = "missed" if section.worst > 1 else "met"
    title = "Worst figure against its target" if rank == 0 else "Next"
    focus = section.profile_focus or "|".join(OURS)
    compared = []
    if section.profile_baseline_argv:
        baseline = profiled(ctx, section, section.profile_baseline_argv, "baseline")
        command = short_argv(section.profile_baseline_argv)
        compared = [
            "", f"Own time per step added over the baseline (`{command}`, profiled the same "
            f"way, {section.profile_steps} steps):", "", "```",
            difference(stats, baseline, section.profile_steps), "```"]
    scope = (f"its training loop alone, {section.profile_steps} steps"
             if section.profile_steps else "the whole process")
    return "\n".join([
        f"### {section.key}", "",
        f"{title}: **{section.key}** ({where}; figure / target = {section.worst:.2f}). "
        f"Command profiled (cProfile, {scope}; {total:.1f} s under the profiler):", "",
        f"    {shown}", "", "Most expensive calls, by cumulative time:", "", "```",
        excerpt(stats, TOP), "```", "",
        f"Functions matching `{focus}`, by cumulative time:", "", "```",
        excerpt(stats, focus, TOP), "```", *compared])
