"""Group commit for PostgreSQL appends: concurrent requests share one statement and commit.

On a small machine the relay and PostgreSQL are CPU-bound long before the disk
is (a WAL flush takes ~0.1 ms): what costs is the work per statement and per
commit (a round trip, a backend wakeup, parsing, executing, committing). So
appends that arrive while earlier ones are in flight wait for a free *slot*
(one of a few concurrent batches), then go together: one statement appends to
all their mailboxes and one commit makes them durable. Each request is
answered only after the commit that holds it, exactly as if alone; under load
batches grow and the cost per append shrinks, at no cost when idle (a lone
request goes at once, in a batch of one).

A batch holds at most one request per mailbox, and no mailbox of a batch in
flight: a request's entries follow those of the mailbox's previous request,
and two batches locking the same row would only make the second one's
requests fall back to the slower locked path.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from carnet.protocol.envelope import Entry

# Batches in flight at once, each on its own pooled connection: the next batch
# forms while PostgreSQL runs the previous one.
DEFAULT_SLOTS = 2
MAX_REQUESTS = 256  # per batch: bounds a statement's size and a batch's latency
MAX_BYTES = 4 << 20  # of entry data per batch; a single larger request still goes alone


@dataclass(slots=True)
class Request:
    mailbox_id: bytes
    entries: Sequence[Entry]
    answer: asyncio.Future[int | None]  # the mailbox's latest cursor, or None: not appended


# Runs one batch; returns the latest cursor of each mailbox it appended to. A
# mailbox missing from the answer got nothing: its request is left to the caller.
RunBatch = Callable[[list[Request]], Awaitable[Mapping[bytes, int]]]


class AppendBatcher:
    def __init__(self, run: RunBatch, slots: int = DEFAULT_SLOTS) -> None:
        self._run = run
        self._slots = slots
        self._queue: deque[Request] = deque()
        self._busy: set[bytes] = set()  # mailboxes of the batches in flight
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # sent so far (how well requests are grouped, for tests)

    async def append(self, mailbox_id: bytes, entries: Sequence[Entry]) -> int | None:
        """The mailbox's latest cursor once `entries` are durably appended by a batch;
        None if the batch could not append them (a retry, a gap, a race: the caller
        judges them alone). Raises what the batch raised (StorageUnavailable)."""
        answer: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queue.append(Request(mailbox_id, entries, answer))
        self._dispatch()
        return await answer

    def _dispatch(self) -> None:
        while self._queue and len(self._tasks) < self._slots:
            batch = self._take()
            if not batch:
                return  # only requests for mailboxes in flight: they wait for those batches
            mailboxes = {request.mailbox_id for request in batch}
            self._busy |= mailboxes
            self.batches += 1
            task = asyncio.get_running_loop().create_task(self._run_batch(batch, mailboxes))
            self._tasks.add(task)

    def _take(self) -> list[Request]:
        """The next batch from the queue, oldest first; requests that must wait stay queued."""
        batch: list[Request] = []
        held: list[Request] = []
        taken: set[bytes] = set()
        size = 0
        while self._queue and len(batch) < MAX_REQUESTS:
            request = self._queue.popleft()
            if request.answer.done():
                continue  # its caller was cancelled before it was sent
            if request.mailbox_id in self._busy or request.mailbox_id in taken:
                held.append(request)
                continue
            request_size = sum(len(entry.data) for entry in request.entries)
            if batch and size + request_size > MAX_BYTES:
                held.append(request)
                break
            batch.append(request)
            taken.add(request.mailbox_id)
            size += request_size
        self._queue.extendleft(reversed(held))
        return batch

    async def _run_batch(self, batch: list[Request], mailboxes: set[bytes]) -> None:
        try:
            latest = await self._run(batch)
        except Exception as exc:
            for request in batch:
                if not request.answer.done():
                    request.answer.set_exception(_fresh(exc))
        except BaseException:
            for request in batch:  # cancelled (the loop is closing): nobody waits forever
                request.answer.cancel()
            raise
        else:
            for request in batch:
                if not request.answer.done():  # a cancelled caller: its entries are durable anyway
                    request.answer.set_result(latest.get(request.mailbox_id))
        finally:
            self._busy -= mailboxes
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._dispatch()

    async def close(self) -> None:
        """Wait for the batches in flight (their requests are answered, their commits done)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _fresh(exc: Exception) -> Exception:
    """A copy of `exc` for each waiter: one instance raised in many tasks would pile
    up all their tracebacks."""
    try:
        return type(exc)(*exc.args)
    except Exception:
        return exc
