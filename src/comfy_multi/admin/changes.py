"""What a burst of platform events changed, so one dashboard update covers it.

The dashboard re-reads a section (the dispatch order, workers, the room...)
only when an event says it moved, and at most a few times a second however
many events arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from comfy_multi.admin.snapshot import JobRow, job_row, progress_of
from comfy_multi.queue.events import Event
from comfy_multi.wire import STEP_MESSAGE


class Section(StrEnum):
    PENDING = "pending"  #: the dispatch order
    RUNNING = "running"
    FINISHED = "finished"  #: the recent finished list
    WORKERS = "workers"
    ROOM = "room"  #: users, their counts and caps
    CONFIG = "config"  #: mode, paused, default cap, broadcast


# which sections a job lifecycle event can move
_JOB_EVENTS: dict[str, frozenset[Section]] = {
    "queued": frozenset({Section.PENDING, Section.ROOM}),
    "updated": frozenset({Section.PENDING}),
    "requeued": frozenset({Section.PENDING, Section.RUNNING, Section.WORKERS, Section.ROOM}),
    "started": frozenset({Section.PENDING, Section.RUNNING, Section.WORKERS, Section.ROOM}),
    "finished": frozenset(
        {Section.PENDING, Section.RUNNING, Section.FINISHED, Section.WORKERS, Section.ROOM}
    ),
}


@dataclass
class Changes:
    sections: set[Section] = field(default_factory=set)
    jobs: dict[str, JobRow] = field(default_factory=dict)  # latest summary per job
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    resync: bool = False  # events were lost: send a whole snapshot

    def __bool__(self) -> bool:
        return bool(self.sections or self.jobs or self.progress or self.resync)

    def note(self, event: Event) -> None:
        kind = event.kind
        if kind in _JOB_EVENTS:
            self.sections |= _JOB_EVENTS[kind]
            job = event.data.get("job")
            row = job_row(job) if isinstance(job, dict) else None
            if row:
                self.jobs[row["id"]] = row
                self.progress.pop(row["id"], None)
        elif kind == "comfy":
            self._note_progress(event.data)
        elif kind in ("config", "broadcast"):
            # a mode switch reorders the queue; a reconnect may have lost anything
            self.sections |= {Section.CONFIG, Section.PENDING}
            if event.data.get("reconnected"):
                self.resync = True
        elif kind == "worker":
            self.sections.add(Section.WORKERS)
        elif kind == "feedback":  # asked, stopped, or a new answer: the count moved
            self.sections.add(Section.CONFIG)

    def _note_progress(self, data: dict[str, Any]) -> None:
        job_id = data.get("job_id")
        messages = data.get("messages")
        if not isinstance(job_id, str) or not isinstance(messages, list):
            return
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
                continue
            kind, body = message.get("type"), message["data"]
            if kind == STEP_MESSAGE:
                self.progress[job_id] = progress_of(body)
            elif kind == "progress":
                # keep the node a step named; older workers send no steps
                known = self.progress.get(job_id, {})
                self.progress[job_id] = {**known, **progress_of(body)}

    def request(self, names: Any) -> None:
        """Sections the page asks for after an action that publishes no event."""
        if not isinstance(names, list):
            return
        for name in names:
            if name in Section.__members__.values():
                self.sections.add(Section(name))

    def take(self) -> Changes:
        taken = Changes(self.sections, self.jobs, self.progress, self.resync)
        self.sections, self.jobs, self.progress, self.resync = set(), {}, {}, False
        return taken
