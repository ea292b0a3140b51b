"""The live progress bar of a collection (a collect.ProgressSink)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from relayaudit.report.console import money


class _RateColumn(ProgressColumn):
    def __init__(self, started: float) -> None:
        super().__init__()
        self._started = started

    def render(self, task: Task) -> Text:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        return Text(f"{task.fields.get('sent', 0) / elapsed:.1f} req/s")


class RichProgress:
    """Progress bar: done/total, answered / failed / retrying live, requests per second, ETA, spend."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._sent = 0
        self._answered = 0
        self._failed = 0
        self._retrying = 0

    def start(self, total: int, done: int) -> None:
        self._progress = Progress(
            TextColumn("collecting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            _RateColumn(time.monotonic()),
            TimeRemainingColumn(),
            TextColumn("{task.fields[spent]}"),
            console=self._console,
            transient=False,
        )
        self._task = self._progress.add_task(
            "collect", total=total, completed=done, spent="$0", sent=0, counts=self._counts()
        )
        self._progress.start()

    def _counts(self) -> str:
        text = f"[green]{self._answered} answered[/]"
        if self._failed:
            text += f" [red]{self._failed} failed[/]"
        if self._retrying:
            text += f" [yellow]{self._retrying} retrying[/]"
        return text

    def advance(self, spent_usd: float, answered: bool) -> None:
        if self._progress is not None and self._task is not None:
            self._sent += 1
            if answered:
                self._answered += 1
            else:
                self._failed += 1
            self._progress.update(self._task, advance=1, spent=money(spent_usd), sent=self._sent, counts=self._counts())

    def retrying(self, change: int) -> None:
        if self._progress is not None and self._task is not None:
            self._retrying = max(0, self._retrying + change)
            self._progress.update(self._task, counts=self._counts())

    def extend(self, more: int) -> None:
        if self._progress is not None and self._task is not None:
            total = self._progress.tasks[0].total or 0
            self._progress.update(self._task, total=total + more)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


class FleetProgress:
    """One live display for a whole fleet: a line per audit in progress (hidden when it ends) and a total."""

    def __init__(self, console: Console, audits: int) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
            transient=True,
        )
        self._total = self._progress.add_task("all audits", total=audits, note="")
        self._requests = 0

    def __enter__(self) -> FleetProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def sink(self, label: str) -> AuditLine:
        return AuditLine(self, label)

    def said(self, text: Text) -> None:
        """A line above the live display (an audit that ended)."""
        self._progress.console.print(text)

    def audit_done(self) -> None:
        self._progress.update(self._total, advance=1)

    def add_line(self, label: str, total: int, done: int) -> TaskID:
        return self._progress.add_task(f"  {label}", total=total, completed=done, note="")

    def update_line(
        self,
        task: TaskID,
        *,
        advance: int = 0,
        total: int | None = None,
        note: str | None = None,
        visible: bool | None = None,
    ) -> None:
        self._progress.update(task, advance=advance, total=total, note=note, visible=visible)

    def count_request(self) -> None:
        self._requests += 1
        self._progress.update(self._total, note=f"{self._requests:,} requests")


class AuditLine:
    """One audit's line in a FleetProgress (a collect.ProgressSink)."""

    def __init__(self, fleet: FleetProgress, label: str) -> None:
        self._fleet = fleet
        self._label = label
        self._task: TaskID | None = None
        self._total = 0
        self._failed = 0

    def start(self, total: int, done: int) -> None:
        self._total = total
        self._task = self._fleet.add_line(self._label, total, done)

    def extend(self, more: int) -> None:
        if self._task is not None:
            self._total += more
            self._fleet.update_line(self._task, total=self._total)

    def advance(self, spent_usd: float, answered: bool) -> None:
        if self._task is not None:
            self._failed += not answered
            note = f"[red]{self._failed} failed[/]" if self._failed else ""
            self._fleet.update_line(self._task, advance=1, note=note)
            self._fleet.count_request()

    def retrying(self, change: int) -> None:
        """Retries show in the failed count once they give up: a fleet's lines stay short."""

    def stop(self) -> None:
        if self._task is not None:
            self._fleet.update_line(self._task, visible=False)
