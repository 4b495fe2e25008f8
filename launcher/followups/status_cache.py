"""The brief rows of runs that have ended, kept between calls of `launch status`.

A finished sweep of ten thousand runs has thirty thousand small files (status.json,
config.yaml, metrics.csv): reading them all takes seconds at every call, although a
run that has ended no longer changes them. `<sweep_dir>/.status_rows.json` keeps,
for each run shown in a final state, what the brief read (`status.rows(...,
brief=True)`) made of it (state, tracked metric, best value) with everything it was
made from: the job's id and record in jobs.json, the scheduler's answer, and stamps
of the run folder and of each file read. While none of these changed, the entry is
used: one `os.stat` per file instead of opening and parsing it.

It is only an optimisation: deleting it is always safe, a damaged one is ignored
(and rewritten), and the table is the same with or without it. It lives in the sweep
folder, never in a run folder; a sweep folder that cannot be written to goes without.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.atomic import write_text
from launcher.executors.registry import SubmittedJob, Sweep
from launcher.followups import slurm_queries as scheduler
from launcher.followups.status import (
    Look,
    Row,
    brief_row,
    look_at,
    row_of,
    scheduler_ids,
)
from launcher.liveness import is_alive
from launcher.states import FINISHED, Recorded
from launcher.status_file import STATUS_FILE

CACHE_FILE = ".status_rows.json"
VERSION = 1
# What the brief read opens, after the run folder itself: the folder's stamp changes
# when a file is made, removed or replaced in it (progress.json or phases/ appearing
# moves where metrics.csv is read from; status.json is replaced whole).
STAMPED = ("", STATUS_FILE, layout.CONFIG_FILE, layout.METRICS_FILE)
# How a run says it ended: its files no longer change by themselves.
ENDED = (Recorded.COMPLETED, Recorded.FAILED, Recorded.OUT_OF_RETRIES, Recorded.STOPPED)
# A file changed more recently than this is not trusted to its stamp: a write in the
# same tick of the file system's clock (or of a file server's, a little off ours) as
# the read could leave the stamp as it was.
RACY_S = 2.0
# What `status.allocation_of` reads of status.json (with `liveness.is_alive`).
ALLOCATION_FIELDS = ("state", "host", "pid", "pid_start", "slurm_job_id")

# {"key": [...], "stamps": [...], "run": {...}, "row": [state, best, metric, min|max]}
Entry = dict[str, Any]


def brief_rows(sweep: Sweep, jobs: list[SubmittedJob]) -> list[Row]:
    """`status.rows(sweep, jobs, brief=True)`: a run whose entry still holds is not read;
    the others are, and those that ended are kept for the next call."""
    from launcher.followups.status_summary import chosen

    kept, damaged = load(sweep.sweep_dir)
    stamps = [stamps_of(job) for job in jobs]
    held = [_held(kept.get(job.run_dir), s) for job, s in zip(jobs, stamps, strict=True)]
    asked = [_kept_look(entry) if entry else look_at(sweep, job)
             for job, entry in zip(jobs, held, strict=True)]
    live = scheduler.query(scheduler_ids(sweep, jobs, asked))  # as without the cache
    looks = [None if entry else look for look, entry in zip(asked, held, strict=True)]
    table, fresh, now = [], {}, time.time_ns()
    for i, job in enumerate(jobs):
        sched = live.get(job.job_id) if sweep.backend == "slurm" else None
        key = key_of(job, sched)
        entry = held[i] if held[i] and held[i]["key"] == key else None
        if entry is None:
            looks[i] = looks[i] or look_at(sweep, job)
            row = brief_row(sweep, job, looks[i], live)
            lasting = _lasting(job, looks[i], sched, row) and _settled(job, stamps[i], now)
            entry = _entry(key, stamps[i], looks[i], row) if lasting else None
        table.append(row if entry is None else _row(job, entry))
        if entry is not None:
            fresh[job.run_dir] = entry
    for i in chosen(table):
        table[i] = row_of(sweep, jobs[i], looks[i] or look_at(sweep, jobs[i]), live)
    save(sweep, jobs, kept, fresh, damaged)
    return table


def key_of(job: SubmittedJob, sched: scheduler.SchedulerState | None) -> list[Any]:
    """Besides the run's files, all that a brief row of a run that ended depends on
    (`status.state_of`): a retry gives the job a new id and state, a requeue a new
    answer from the scheduler."""
    answer = [sched.state, sched.restarts, sched.live] if sched else None
    return [job.job_id, job.state, job.note, answer]


def stamps_of(job: SubmittedJob) -> list[list[int] | None] | None:
    """(mtime, ctime, size, inode) of the run folder and of each file the brief read
    opens, None for a file that does not exist; None when the run has no folder or
    cannot be looked at (such a run is not kept). Taken before the files are read, so
    a write in between shows as a changed stamp next time."""
    if job.problem:
        return None
    stamps: list[list[int] | None] = []
    for name in STAMPED:
        try:  # not os.path.join: ten thousand runs, four paths each
            found = os.stat(f"{job.run_dir}{os.sep}{name}" if name else job.run_dir)
        except FileNotFoundError:
            if not name:
                return None
            stamps.append(None)
            continue
        except OSError:  # not allowed to look: read it every time, as without a cache
            return None
        stamps.append([found.st_mtime_ns, found.st_ctime_ns, found.st_size, found.st_ino])
    return stamps


def _held(entry: Entry | None, stamps: list[list[int] | None] | None) -> Entry | None:
    """The entry, while the run's folder and files are as when it was made."""
    return entry if entry is not None and stamps is not None and \
        entry["stamps"] == stamps else None


def _lasting(job: SubmittedJob, look: Look, sched: scheduler.SchedulerState | None,
             row: Row) -> bool:
    """Whether a brief row holds while the run's files, the job's record and the
    scheduler's answer stay as they are: it is shown in a final state, which the run
    said or the scheduler did (it ended: its word decides), so `status.state_of` asks
    no process or allocation whether it lives; its status.json was read whole."""
    if look.problems or look.damaged or not look.folder or row.state not in FINISHED:
        return False
    return look.run.get("state") in ENDED or (sched is not None and not sched.active)


def _settled(job: SubmittedJob, stamps: list[list[int] | None] | None, now: int) -> bool:
    """Whether the stamps tell a change of the run's files: none was changed a moment
    ago, and its metrics are in its own folder (not in the phase that wrote last:
    `live_dir`)."""
    if stamps is None:
        return False
    recent = now - int(RACY_S * 1e9)
    if any(s is not None and max(s[0], s[1]) > recent for s in stamps):
        return False
    return not os.path.exists(os.path.join(job.run_dir, layout.PHASES_DIR)) or \
        os.path.isfile(os.path.join(job.run_dir, layout.PROGRESS_FILE))


def _entry(key: list[Any], stamps: list[list[int] | None] | None, look: Look,
           row: Row) -> Entry:
    run = {k: look.run[k] for k in ALLOCATION_FIELDS if k in look.run}
    return {"key": key, "stamps": stamps, "run": run,
            "row": [row.state, row.best, *row.metric]}


def _kept_look(entry: Entry) -> Look:
    """Enough of a run not read again for `status.allocation_of`, so that the scheduler
    is asked what it would be asked without the cache: the fields of its status.json
    as kept (the file is unchanged), and whether its process lives, asked now."""
    run = entry["run"]
    alive = is_alive(run) if run.get("state") in (Recorded.RUNNING, Recorded.REQUEUED) \
        else None
    return Look(run, False, True, alive, None)


def _row(job: SubmittedJob, entry: Entry) -> Row:
    """The brief row `status.brief_row` made from the run's files, as kept."""
    state, best, metric, mode = entry["row"]
    return Row(job.job_id or "-", "", state, "", "", best, "", "", metric=(metric, mode),
               brief=True)


def load(sweep_dir: str) -> tuple[dict[str, Entry], bool]:
    """The entries kept, by run folder, and whether the file is damaged (then none is
    used, and the file is written again)."""
    try:
        with open(Path(sweep_dir) / CACHE_FILE, "rb") as file:
            data = json.loads(file.read())
    except FileNotFoundError:
        return {}, False
    except (OSError, ValueError):  # unreadable or not JSON: as no cache, then rewritten
        return {}, True
    entries = data.get("rows") if isinstance(data, dict) and data.get("version") == VERSION \
        else None
    if not isinstance(entries, dict) or not all(map(_well_formed, entries.values())):
        return {}, True
    return entries, False


def _well_formed(entry: Any) -> bool:
    """An entry as `_entry` makes it (key and stamps are only compared, never used; the
    run's fields are checked where they are used, as status.json's are)."""
    return isinstance(entry, dict) and isinstance(entry.get("key"), list) \
        and isinstance(entry.get("stamps"), list) and isinstance(entry.get("run"), dict) \
        and isinstance(entry.get("row"), list) \
        and len(entry["row"]) == 4 and all(isinstance(v, str) for v in entry["row"])


def save(sweep: Sweep, jobs: list[SubmittedJob], kept: dict[str, Entry],
         fresh: dict[str, Entry], damaged: bool) -> None:
    """Write the entries of this call, with those kept for the sweep's other jobs (a
    status of one run), when they differ from what the file holds."""
    others = {job.run_dir for job in sweep.jobs} - {job.run_dir for job in jobs}
    entries = {d: e for d, e in kept.items() if d in others} | fresh
    if entries == kept and not damaged:
        return
    text = json.dumps({"version": VERSION, "rows": entries}, separators=(",", ":"))
    # A sweep folder this user may not write to (another's sweep, a read-only mount):
    # the table is the same without the cache, only read in full again next time.
    with contextlib.suppress(OSError):
        write_text(Path(sweep.sweep_dir) / CACHE_FILE, text)
