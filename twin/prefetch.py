"""``Prefetch``: run an iterator in a background thread, a few items ahead of its consumer.

The live mirror decodes and detects frame i+1 while the main thread solves, renders and
writes frame i. The heavy parts on both sides (ONNX Runtime, OpenCV, PyAV) release the
GIL, so on two cores the two halves overlap instead of adding up.

    with Prefetch(detections_of(frames), depth=2) as items:
        for item in items:
            ...

An exception in the producer is raised in the consumer at the item where it happened;
leaving the ``with`` block early stops the producer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

_END = object()


class Prefetch:
    """Iterate ``source`` in a daemon thread, at most ``depth`` items ahead."""

    def __init__(self, source: Iterator, depth: int = 2):
        if depth < 1:
            raise ValueError(f"Prefetch depth must be >= 1, got {depth}")
        self._source = source
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
        self._started = False

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((_END, exc))
            return
        self._put((_END, None))

    def __iter__(self) -> Iterator:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            item, exc = self._queue.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item

    def close(self) -> None:
        """Stop the producer (it finishes the item it is working on) and wait for it."""
        self._stop.set()
        if self._started:
            self._thread.join(timeout=10.0)

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
