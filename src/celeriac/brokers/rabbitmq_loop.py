"""A private asyncio loop in a daemon thread, so a synchronous API can drive an async client.

Every broker call from any thread becomes a coroutine on this one loop, so the AMQP connection is
only ever touched by one thread. A forked child never uses its parent's loop: the owner pid is
checked on each call and a fresh loop is started in the child.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on a private loop; started lazily, restarted after fork."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                self._start()
            assert self._loop is not None
            return self._loop

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        ready.wait()
        self._loop, self._pid = loop, os.getpid()

    def running_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop if this process has started one, without starting it."""
        loop = self._loop
        return loop if loop is not None and self._pid == os.getpid() and not loop.is_closed() else None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result in the calling thread."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a broker call was made from inside the broker's own loop")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def forget(self) -> None:
        """Drop a loop inherited through fork without touching it (it has no thread here)."""
        with self._lock:
            if self._pid != os.getpid():
                self._loop, self._thread, self._pid = None, None, 0

    def stop(self) -> None:
        """Stop the loop of this process (after its connections are closed)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None or self._pid != os.getpid():
                self._loop, self._thread, self._pid = None, None, 0
                return
            self._loop, self._thread, self._pid = None, None, 0
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        if not loop.is_running():
            loop.close()
