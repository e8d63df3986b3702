"""The terminal view behind ``celeriac events``: workers on top, newest tasks below, ``q`` quits.

Drawn with curses from the standard library. A background thread feeds a ``State`` from the
event stream; the screen is redrawn every ``freq`` seconds or on a key, so a burst of events
costs one redraw.
"""

from __future__ import annotations

import curses
import datetime as dt
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from ..event_state import State, TaskState, WorkerState
from ..events import StreamListener

if TYPE_CHECKING:
    from ..app.base import Celery
    from ..events import Receiver

QUIT_KEYS = (ord("q"), ord("Q"), 27)
_STATE_COLORS = {"SUCCESS": 2, "FAILURE": 1, "REVOKED": 3, "RETRY": 3, "STARTED": 4}


class EventView:
    """Holds the state and knows how to draw it on a curses window."""

    def __init__(self, app: Celery, state: State) -> None:
        self.app = app
        self.state = state
        self.lock = threading.Lock()

    def feed(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.state.event(event)

    def lines(self, width: int, height: int) -> list[tuple[str, int]]:
        """What to show, as (text, color pair) rows; pure, so it is easy to reason about."""
        with self.lock:
            workers = sorted(self.state.workers.values(), key=lambda w: w.hostname)
            tasks = self.state.tasks_by_time()
            counts = self.state.tasks_by_state()
        online = sum(w.alive() for w in workers)
        rows = [(f"celeriac events  {self.app.conf.broker_url or ''}  workers: {online} online / {len(workers)}"
                 f"  tasks: {len(tasks)}  q: quit", 5)]
        rows.append((" ".join(f"{k}:{v}" for k, v in sorted(counts.items())) or "no task events yet", 0))
        rows.append(("", 0))
        rows.append((f"{'WORKER':<40} {'STATUS':<8} {'ACTIVE':>6} {'PROCESSED':>9} {'LOAD':<16} {'SEEN':>6}", 5))
        rows.extend(_worker_row(w) for w in workers)
        rows.append(("", 0))
        rows.append((f"{'UUID':<36} {'NAME':<28} {'STATE':<9} {'WORKER':<24} {'RUNTIME':>8}  RESULT", 5))
        room = max(0, height - len(rows) - 1)
        rows.extend((_task_row(t), _STATE_COLORS.get(t.state, 0)) for t in tasks[:room])
        return [(text[: width - 1], color) for text, color in rows[:height]]


def _worker_row(worker: WorkerState) -> tuple[str, int]:
    alive = worker.alive()
    seen = f"{time.time() - worker.last_seen:.0f}s" if worker.last_seen else "-"
    load = ",".join(f"{x:.2f}" for x in worker.loadavg[:3])
    text = f"{worker.hostname:<40} {'ONLINE' if alive else 'OFFLINE':<8} {worker.active:>6} {worker.processed:>9} {load:<16} {seen:>6}"
    return text, 2 if alive else 1


def _task_row(task: TaskState) -> str:
    runtime = task.fields.get("runtime")
    outcome = task.fields.get("exception") or task.fields.get("result") or task.fields.get("args") or ""
    when = dt.datetime.fromtimestamp(task.timestamp).strftime("%H:%M:%S") if task.timestamp else ""
    return (f"{task.uuid:<36} {str(task.name or '?')[:28]:<28} {task.state:<9} {str(task.worker or '')[:24]:<24} "
            f"{(f'{runtime:.3f}s' if isinstance(runtime, (int, float)) else ''):>8}  {when} {outcome}")


def _init_colors() -> None:
    try:
        curses.start_color()
        curses.use_default_colors()
        for pair, color in ((1, curses.COLOR_RED), (2, curses.COLOR_GREEN), (3, curses.COLOR_YELLOW), (4, curses.COLOR_CYAN),
                            (5, curses.COLOR_WHITE)):
            curses.init_pair(pair, color, -1)
    except curses.error:
        pass


def _draw(screen: Any, view: EventView) -> None:
    height, width = screen.getmaxyx()
    screen.erase()
    for y, (text, color) in enumerate(view.lines(width, height)):
        attr = curses.color_pair(color) if curses.has_colors() else 0
        if color == 5:
            attr |= curses.A_BOLD
        try:
            screen.addstr(y, 0, text, attr)
        except curses.error:
            pass
    screen.refresh()


def _loop(screen: Any, view: EventView, freq: float) -> None:
    curses.curs_set(0)
    _init_colors()
    screen.timeout(int(freq * 1000))
    while True:
        _draw(screen, view)
        key = screen.getch()
        if key in QUIT_KEYS:
            return


def run_view(app: Celery, receiver: Receiver, freq: float = 1.0) -> None:
    """Show the view until ``q``; events keep flowing in while the screen waits for keys."""
    view = EventView(app, State())
    receiver.handlers["*"] = view.feed
    receiver.wakeup_workers()
    follower = StreamListener(receiver)
    follower.start()
    for stale in ("LINES", "COLUMNS"):  # size comes from the terminal itself, not from inherited variables
        os.environ.pop(stale, None)
    try:
        curses.wrapper(_loop, view, freq)
    except KeyboardInterrupt:
        pass
    finally:
        follower.stop()
