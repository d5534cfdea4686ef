"""Read ahead on a thread: CSV parsing and Parquet encoding on two cores at once.

pyarrow releases the GIL while it parses a block and while it encodes a row group, so a reader
thread that parses the next batches while the caller writes the previous ones overlaps the two
(the Parquet writer itself is single-threaded). The queue is short, so memory stays bounded.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
DEPTH = 2


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


class Prefetch(Generic[T]):
    """Iterate `items` on a thread, `depth` items ahead; its exception re-raised in the caller.

    Always `close()` it (or use it as a context manager): that stops the thread.
    """

    def __init__(self, items: Iterator[T], depth: int = DEPTH, name: str = "prefetch") -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), name=name, daemon=True)
        self._thread.start()

    def _run(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if self._stop.is_set():
                    return
                self._queue.put(item)
        except BaseException as error:
            self._queue.put(_Failure(error))
            return
        self._queue.put(_DONE)

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]

    def close(self) -> None:
        """Stop the thread: it ends after the item it is reading (at most one more put)."""
        self._stop.set()
        while True:  # free the slots a blocked put may be waiting for
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
