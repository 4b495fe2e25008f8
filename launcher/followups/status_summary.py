"""A sweep of hundreds of jobs, summarised: the rows worth reading, and what was left out.

Up to `SHOWN_UP_TO` jobs, `launch status` prints every row. Past that, a
table of thousands of rows is scrolled past, not read: it prints the best
runs by their tracked metric, the ones that need a look (failed, timed out,
died, damaged, ...), and a few running ones, then one line counting the rest
by state and saying that `--all` prints every row. The title line above it
still counts every job by state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from launcher.states import RETRYABLE, Shown

SHOWN_UP_TO = 40
BEST, NEED_A_LOOK, RUNNING = 5, 10, 10  # rows of each kind in a summary
LOOK_AT = (*RETRYABLE, Shown.DAMAGED, Shown.MISSING)


def summarised(table: Sequence[Any], show_all: bool) -> tuple[list, str | None]:
    """The rows to print, in the table's order, and the line about the others (None when
    every row is printed). A table read for a summary (`rows(..., brief=True)`) was
    chosen from already: its rows read in full are those shown."""
    if show_all or len(table) <= SHOWN_UP_TO:
        return list(table), None
    picked = [i for i, r in enumerate(table) if not r.brief] \
        if any(r.brief for r in table) else chosen(table)
    shown = [table[i] for i in picked]
    counts: dict[str, int] = {}
    for row in table:
        counts[row.state] = counts.get(row.state, 0) + 1
    for row in shown:
        counts[row.state] -= 1
    counts = {state: n for state, n in counts.items() if n}
    left = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return shown, (f"{len(table) - len(shown)} more job(s) not shown ({left}); shown: the "
                   f"best {BEST}, up to {NEED_A_LOOK} that need a look, up to {RUNNING} "
                   f"running; --all prints every row")


def chosen(table: Sequence[Any]) -> list[int]:
    """Where in the table the rows a summary shows are, in order: all of a small table."""
    if len(table) <= SHOWN_UP_TO:
        return list(range(len(table)))
    best = best_rows(table)[:BEST]
    look = [r for r in table if r.state in LOOK_AT][:NEED_A_LOOK]
    running = [r for r in table if r.state == Shown.RUNNING][:RUNNING]
    ids = {id(r) for r in [*best, *look, *running]}
    return [i for i, r in enumerate(table) if id(r) in ids]


def best_rows(table: Sequence[Any]) -> list:
    """Rows with a best value, best first (each row's metric says min or max)."""
    scored = []
    for row in table:
        try:
            value = float(row.best)
        except ValueError:
            continue
        scored.append((value if row.metric[1] == "min" else -value, row))
    return [row for _, row in sorted(scored, key=lambda pair: pair[0])]
