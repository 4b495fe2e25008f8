"""Profile the commands behind the missed targets with cProfile, for RESULTS.md.

Each section names the command behind its headline figure
(`Section.profile_argv`) and how far that figure is from its target
(`Section.worst`, above 1 when the target is missed). The missed ones, worst
first (two at most; the worst figure alone when every target holds), are run
again under cProfile (`python -m cProfile`), and two excerpts go into the
report: the most expensive calls by cumulative time, and the functions that
explain the ratio (`Section.profile_focus`; the launcher's own by default).
"""

from __future__ import annotations

import io
import pstats
import sys
from pathlib import Path

from common import PYTHON, ROOT, Context, Section, bench_env, run
from shims import SchedulerShims

TOP = 22
OURS = ("/launcher/", "/hydra_plugins/launcher_executors/")


def missed_first(sections: list[Section], limit: int) -> list[Section]:
    """Sections to profile: every missed target, worst first (at least the worst one)."""
    candidates = sorted((s for s in sections if s.profile_argv and s.worst is not None),
                        key=lambda s: s.worst, reverse=True)
    missed = [s for s in candidates if s.worst > 1]
    return (missed or candidates[:1])[:limit]


def excerpt(stats: pstats.Stats, *restrictions: object) -> str:
    buffer = io.StringIO()
    stats.stream = buffer
    stats.sort_stats("cumulative").print_stats(*restrictions)
    lines = buffer.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    site = next((str(p) + "/" for p in map(Path, sys.path) if p.name == "site-packages"), "")
    return "\n".join(line.replace(site, "").replace(f"{ROOT}/", "")
                     for line in lines[start:] if line.strip())


def profile_worst(ctx: Context, sections: list[Section], limit: int = 2) -> str:
    """Markdown: for each missed target (worst first), the command and two excerpts."""
    return "\n\n".join(profile_one(ctx, section, rank)
                        for rank, section in enumerate(missed_first(sections, limit)))


def profile_one(ctx: Context, section: Section, rank: int) -> str:
    ctx.log(f"profiling {section.key}'s headline figure with cProfile")
    folder = ctx.folder("profile", section.key)
    output = folder / "profile.prof"
    shims = SchedulerShims(folder / "shims")
    try:
        run([PYTHON, "-m", "cProfile", "-o", str(output), *section.profile_argv],
            env=shims.env(bench_env(section.profile_env)), timeout=600)
    finally:
        shims.cancel_all()
    stats = pstats.Stats(str(output))
    total = stats.total_tt  # type: ignore[attr-defined]
    shown = " ".join(Path(a).name if a.startswith("/") and "=" not in a else a
                     for a in section.profile_argv)
    if len(shown) > 300:
        shown = shown[:300] + " ..."
    where = "missed" if section.worst > 1 else "met, with the least margin"
    title = "Worst figure against its target" if rank == 0 else "Next missed target"
    focus = section.profile_focus or "|".join(OURS)
    return "\n".join([
        f"### {section.key}", "",
        f"{title}: **{section.key}** ({where}; figure / target = {section.worst:.2f}). "
        f"Command profiled (cProfile, {total:.1f} s under the profiler):", "",
        f"    {shown}", "", "Most expensive calls, by cumulative time:", "", "```",
        excerpt(stats, TOP), "```", "",
        f"Functions matching `{focus}`, by cumulative time:", "", "```",
        excerpt(stats, focus, TOP), "```"])
