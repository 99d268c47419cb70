"""Load on real relay processes: subscribed devices, appends, reads, a growing store.

    python -m bench relay [--backend sqlite|postgres] [--nodes 1|2] [--devices 1000]
                          [--appenders 64] [--clients 2] [--duration 10] [--growth 1000000]
                          [--scenarios subscribe,append,growth]

- subscribe: N devices each create a mailbox and hold a live subscription
  (spread over the nodes); the relays' RSS before and after gives the memory
  per idle subscription. Then a mixed load for `--duration` seconds: appends to
  the devices' mailboxes (through another node than the subscription's, with
  two nodes), reads, and the pushes the subscribers hear (count and latency).
- append: `--appenders` concurrent clients, each appending single small
  entries (1,065 bytes, an ordinary padded entry) to its own mailbox, spread
  over `--clients` load processes. Devices would build and sign requests on
  their own machines: here the clients do it before the clock starts, and send
  them over bare keep-alive HTTP/1.1 connections, so that the CPU left to the
  relay on a shared machine is not spent on the load generator. The relay
  still checks every signature and stores every (fresh, random) entry.
- growth: a fresh store pre-filled through the storage API (64-entry batches,
  1,000 mailboxes), then append and read (one entry at a random cursor)
  latency measured at 10,000 entries and again at `--growth` entries.

Each scenario also prints the CPU the relay processes used (in cores), and how
busy the whole machine was: the load generator, PostgreSQL and anything else
running share its cores (run twice, on a quiet machine, before trusting a figure).

The relays run with rate limits off (all load comes from one address) and
log_level warning (an access log line per request would be measured too).
PostgreSQL runs durable (fsync on), like production. Figures are printed; the
benchmark never fails on them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from nacl.encoding import RawEncoder
from nacl.hash import blake2b
from nacl.signing import SigningKey

from carnet.protocol import auth, wire
from carnet.protocol.envelope import Entry
from carnet.protocol.mailbox import MailboxKeys
from carnet.relay.pg_cluster import PostgresCluster
from carnet.relay.process import RelayProcess
from carnet.relay.storage.base import Storage
from carnet.relay.storage.postgres import PostgresStorage
from carnet.relay.storage.sqlite import SqliteStorage

ENTRY_BYTES = 1065  # one ordinary appointment entry, padded (docs/protocol.md)
RELAY_ARGS = ("--rate-per-address", "0", "--rate-per-connection", "0", "--log-level", "warning")
PREFILL_MAILBOXES = 1_000
PREFILL_BATCH = 64
MEASURE_OPS = 2000


# -- the relays under test ---------------------------------------------------------------


@dataclass
class Stack:
    backend: str
    root: Path
    nodes: list[RelayProcess] = field(default_factory=list)
    cluster: PostgresCluster | None = None
    dsn: str = ""
    pool: int = 10

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self, count: int) -> None:
        args = RELAY_ARGS + (
            ("--database", self.dsn, "--database-pool", str(self.pool)) if self.dsn else ()
        )
        for index in range(count):
            node = RelayProcess(self.root / f"node{index}", args)
            self.nodes.append(node.start(60))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes.clear()

    async def open_storage(self) -> Storage:
        """Direct access to the store (SQLite: only while no relay runs)."""
        if self.dsn:
            return await PostgresStorage.open(self.dsn, pool_size=8, listen=False)
        return SqliteStorage.open(self.root / "node0")


@contextlib.contextmanager
def stack(backend: str, pool: int = 10) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="carnet-bench-") as tmp:
        built = Stack(backend, Path(tmp), pool=pool)
        if backend == "postgres":
            built.cluster = PostgresCluster.start(durable=True)
            built.dsn = built.cluster.create_database("bench")
        try:
            yield built
        finally:
            built.stop()
            if built.cluster is not None:
                built.cluster.remove()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- a signing client --------------------------------------------------------------------


class Box:
    """One mailbox as a bench device sees it: keys, signers, its own writer's next seq."""

    def __init__(self, keys: MailboxKeys, writer: bytes | None = None, seq: int = 0) -> None:
        self.keys = keys
        self.write: SigningKey = keys.write_signer()
        self.read: SigningKey = keys.read_signer()
        self.writer = writer or os.urandom(16)
        self.seq = seq
        self.latest = 0
        self.lock = asyncio.Lock()  # one append at a time per writer: seqs stay contiguous

    @classmethod
    def numbered(cls, number: int) -> Box:
        secret = blake2b(number.to_bytes(8, "big"), digest_size=32, encoder=RawEncoder)
        return cls(MailboxKeys.from_secret(secret))

    def next_entry(self) -> Entry:
        self.seq += 1
        return Entry(self.writer, self.seq, os.urandom(ENTRY_BYTES))


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    def summary(self, seconds: float | None = None) -> str:
        if not self.latencies:
            return f"0 ok, {self.errors} errors"
        ordered = sorted(self.latencies)
        p50 = ordered[len(ordered) // 2] * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        rate = f"{len(ordered) / seconds:,.0f}/s, " if seconds else ""
        return (
            f"{len(ordered):,} ok, {rate}p50 {p50:.1f} ms, p99 {p99:.1f} ms, {self.errors} errors"
        )

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")


async def call(
    session: aiohttp.ClientSession,
    url: str,
    method: str,
    path: str,
    key: SigningKey | None,
    body: object = None,
) -> tuple[int, dict[str, object]]:
    raw = b"" if body is None else json.dumps(body).encode()
    headers = auth.sign_request(key, method, path, raw) if key is not None else {}
    async with session.request(method, url + path, data=raw or None, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def create(session: aiohttp.ClientSession, url: str, box: Box) -> bool:
    read_key = bytes(box.read.verify_key)
    body = {
        "mailbox": box.keys.hex_id,
        "write_key": bytes(box.write.verify_key).hex(),
        "read_key": read_key.hex(),
        "proof": base64.b64encode(
            auth.sign_creation(box.write, box.keys.mailbox_id, read_key)
        ).decode(),
        "ttl": None,
    }
    status, _ = await call(session, url, "POST", f"{wire.API}/mailboxes", None, body)
    return status in (200, 201)


async def append(session: aiohttp.ClientSession, url: str, box: Box, tally: Tally) -> None:
    async with box.lock:
        await _append(session, url, box, tally)


async def _append(session: aiohttp.ClientSession, url: str, box: Box, tally: Tally) -> None:
    entry = box.next_entry()
    path = wire.mailbox_path(box.keys.mailbox_id, "/entries")
    started = time.perf_counter()
    try:
        status, answer = await call(
            session, url, "POST", path, box.write, {"entries": [wire.entry_to_json(entry)]}
        )
    except (aiohttp.ClientError, OSError):
        status, answer = 0, {}
    if status == 200:
        tally.latencies.append(time.perf_counter() - started)
        box.latest = int(answer["cursor"])  # type: ignore[call-overload]
    else:
        tally.errors += 1
        box.seq -= 1  # not stored: the same seq again next time


async def read(
    session: aiohttp.ClientSession, url: str, box: Box, tally: Tally, limit: int = 10
) -> None:
    after = random.randrange(max(box.latest, 1))
    path = wire.mailbox_path(box.keys.mailbox_id, "/entries") + f"?after={after}&limit={limit}"
    started = time.perf_counter()
    try:
        status, _ = await call(session, url, "GET", path, box.read)
    except (aiohttp.ClientError, OSError):
        status = 0
    if status == 200:
        tally.latencies.append(time.perf_counter() - started)
    else:
        tally.errors += 1


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
    )


async def gather_limited(jobs: Sequence[object], limit: int) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def run(job: object) -> None:
        async with semaphore:
            await job  # type: ignore[misc]

    await asyncio.gather(*(run(job) for job in jobs))


# -- scenarios ---------------------------------------------------------------------------


async def scenario_subscribe(stack: Stack, devices: int, duration: float) -> None:
    urls = stack.urls
    boxes = [Box(MailboxKeys.from_secret(os.urandom(32))) for _ in range(devices)]
    heard: dict[int, list[tuple[int, float]]] = {i: [] for i in range(devices)}
    sent: dict[tuple[int, int], float] = {}
    errors = 0
    async with session() as http:
        await gather_limited(
            [create(http, urls[i % len(urls)], b) for i, b in enumerate(boxes)], 64
        )
        before = [rss_kib(node.proc.pid) for node in stack.nodes if node.proc]
        closed = asyncio.Event()

        async def subscribe(index: int, ready: asyncio.Event) -> None:
            nonlocal errors
            box = boxes[index]
            path = wire.mailbox_path(box.keys.mailbox_id, "/subscribe") + "?after=0"
            headers = auth.sign_request(box.read, "GET", path, b"")
            try:
                async with http.ws_connect(urls[index % len(urls)] + path, headers=headers) as ws:
                    first = True
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        if first:
                            first = False
                            ready.set()
                            continue
                        heard[index].append((json.loads(msg.data)["cursor"], time.perf_counter()))
            except (aiohttp.ClientError, OSError):
                pass
            if not closed.is_set():
                errors += 1  # a subscription ended before we closed it
            ready.set()

        started = time.perf_counter()
        readies = [asyncio.Event() for _ in boxes]
        tasks = [asyncio.ensure_future(subscribe(i, readies[i])) for i in range(devices)]
        for ready in readies:
            await ready.wait()
        opened = time.perf_counter() - started
        await asyncio.sleep(2)  # let allocations settle
        after = [rss_kib(node.proc.pid) for node in stack.nodes if node.proc]
        delta = sum(after) - sum(before)
        pairs = zip(after, before, strict=True)
        print(
            f"subscriptions: {devices:,} opened in {opened:.1f} s, {errors} errors; relay RSS"
            f" +{delta / 1024:.1f} MiB = {delta / devices:.1f} KiB per idle subscription"
            f" (per node: {', '.join(f'{(a - b) / 1024:.1f} MiB' for a, b in pairs)})"
        )

        # Mixed load: appends through the node after the subscription's, reads, pushes.
        appends, reads = Tally(), Tally()
        deadline = time.perf_counter() + duration

        async def appender(worker: int) -> None:
            while time.perf_counter() < deadline:
                index = random.randrange(devices)
                url = urls[(index + 1) % len(urls)]
                await append(http, url, boxes[index], appends)
                sent[(index, boxes[index].latest)] = time.perf_counter()

        async def reader() -> None:
            while time.perf_counter() < deadline:
                index = random.randrange(devices)
                await read(http, urls[index % len(urls)], boxes[index], reads)

        mix_started = time.perf_counter()
        await asyncio.gather(*(appender(w) for w in range(32)), *(reader() for _ in range(8)))
        elapsed = time.perf_counter() - mix_started
        await asyncio.sleep(1)
        push = Tally()
        missed = 0
        for index, box in enumerate(boxes):
            cursors = heard[index]
            if box.latest and (not cursors or cursors[-1][0] < box.latest):
                missed += 1
            for cursor, when in cursors:
                if (index, cursor) in sent:
                    push.latencies.append(max(0.0, when - sent[(index, cursor)]))
        closed.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(
        f"mixed load ({duration:g} s, {devices:,} subscribed): appends {appends.summary(elapsed)}"
    )
    print(f"  reads {reads.summary(elapsed)}")
    print(
        f"  pushes: {push.summary()} (after the append's answer);"
        f" devices that missed their latest cursor: {missed}"
    )


# Appends each client signs before the clock starts (more than it can send).
PRESIGNED = 800


def presigned(box: Box, count: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """`count` append requests of `box`'s next entries: path, body and signed headers.

    Devices sign on their own machines; here the load generator shares the
    relay's cores, so it does that work before the clock starts. The relay still
    checks every signature, and every entry is fresh random bytes.
    """
    path = wire.mailbox_path(box.keys.mailbox_id, "/entries")
    requests = []
    for _ in range(count):
        raw = json.dumps({"entries": [wire.entry_to_json(box.next_entry())]}).encode()
        requests.append((path, raw, auth.sign_request(box.write, "POST", path, raw)))
    return requests


class Connection:
    """A bare keep-alive HTTP/1.1 connection for pre-signed appends.

    aiohttp's client costs about as much CPU per request as the relay itself;
    on one machine that CPU is taken from the relay. This writes the request
    bytes and reads the answer's status, headers and body, nothing more.
    """

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, raw: bytes, headers: dict[str, str]) -> int:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw)}\r\n{head}\r\n".encode()
            + raw
        )
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in lines
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        return int(status_line.split()[1])

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()


async def send_presigned(
    connection: Connection, request: tuple[str, bytes, dict[str, str]], tally: Tally
) -> bool:
    started = time.perf_counter()
    try:
        ok = await connection.post(*request) == 200
    except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
        connection.close()
        connection.streams = None
        ok = False
    if ok:
        tally.latencies.append(time.perf_counter() - started)
    else:
        tally.errors += 1
    return ok


async def append_load(urls: list[str], appenders: int, duration: float) -> Tally:
    """`appenders` clients appending as fast as they are answered, each to its own mailbox."""
    boxes = [Box(MailboxKeys.from_secret(os.urandom(32))) for _ in range(appenders)]
    tally = Tally()
    async with session() as http:
        await gather_limited(
            [create(http, urls[i % len(urls)], b) for i, b in enumerate(boxes)], 64
        )
        queues = [presigned(box, PRESIGNED) for box in boxes]
        deadline = time.perf_counter() + duration

        async def worker(index: int) -> None:
            url, queue = urls[index % len(urls)], queues[index]
            connection = Connection(url)
            while queue and time.perf_counter() < deadline:
                # A refused request is sent again as it is: the same entry, idempotent.
                if await send_presigned(connection, queue[0], tally):
                    queue.pop(0)
            connection.close()
            while time.perf_counter() < deadline:  # past what was signed beforehand
                await append(http, url, boxes[index], tally)

        await asyncio.gather(*(worker(i) for i in range(appenders)))
    return tally


def _append_process(urls: list[str], appenders: int, duration: float) -> Tally:
    return asyncio.run(append_load(urls, appenders, duration))


async def scenario_append(stack: Stack, appenders: int, duration: float, clients: int) -> None:
    """Spread over `clients` processes, so one Python client is not what is measured."""
    share = [appenders // clients + (i < appenders % clients) for i in range(clients)]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(clients, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = await asyncio.gather(
            *(loop.run_in_executor(pool, _append_process, stack.urls, n, duration) for n in share)
        )
    tally = Tally([x for part in parts for x in part.latencies], sum(p.errors for p in parts))
    print(
        f"appends, single {ENTRY_BYTES}-byte entries, {appenders} concurrent clients in"
        f" {clients} process(es), {duration:g} s: {tally.summary(duration)}"
    )


async def prefill(stack: Stack, boxes: list[Box], target: int) -> None:
    """Grow the store to `target` entries, spread evenly, through the storage API."""
    storage = await stack.open_storage()
    try:
        have = (await storage.stats()).entries
        per_box = -(-(target - have) // len(boxes))
        for box in boxes:
            if box.seq == 0:
                await storage.create_mailbox(
                    box.keys.mailbox_id, bytes(box.write.verify_key), bytes(box.read.verify_key)
                )

        async def fill(box: Box) -> None:
            left = per_box
            while left > 0:
                batch = [box.next_entry() for _ in range(min(PREFILL_BATCH, left))]
                box.latest, _ = await storage.append(box.keys.mailbox_id, batch)
                left -= len(batch)

        await gather_limited([fill(box) for box in boxes], 32)
        total = (await storage.stats()).entries
    finally:
        await storage.close()
    print(f"  store: {total:,} entries in {len(boxes):,} mailboxes")


async def measure(stack: Stack, boxes: list[Box]) -> tuple[Tally, Tally]:
    appends, reads = Tally(), Tally()
    urls = stack.urls
    async with session() as http:
        for _ in range(200):  # warm-up: connections, caches
            await read(http, urls[0], random.choice(boxes), Tally())

        async def worker() -> None:
            for _ in range(MEASURE_OPS // 4):
                box = random.choice(boxes)
                await append(http, urls[0], box, appends)
                # One entry from anywhere in the mailbox: the same work at any store size.
                await read(http, urls[0], box, reads, limit=1)

        await asyncio.gather(*(worker() for _ in range(4)))
    return appends, reads


async def scenario_growth(stack: Stack, nodes: int, target: int) -> None:
    boxes = [Box.numbered(n) for n in range(PREFILL_MAILBOXES)]
    results = []
    for size in (10_000, target):
        stack.stop()  # SQLite: one process at a time on the data directory
        started = time.perf_counter()
        await prefill(stack, boxes, size)
        print(f"  pre-filled in {time.perf_counter() - started:.0f} s")
        stack.start(nodes)
        appends, reads = await measure(stack, boxes)
        print(f"  at {size:,} entries: appends {appends.summary()}")
        print(f"  at {size:,} entries: reads {reads.summary()}")
        results.append((appends.p50, reads.p50))
    (a_small, r_small), (a_big, r_big) = results
    print(
        f"growth 10,000 -> {target:,} entries: p50 ratio appends {a_big / a_small:.2f},"
        f" reads {r_big / r_small:.2f}"
    )


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


@contextlib.contextmanager
def cpu_report(stack: Stack) -> Iterator[None]:
    """The relays' CPU, and the whole machine's: the load generator, the database and
    anything else running compete for the same cores, and a busy machine skews figures."""
    pids = [node.proc.pid for node in stack.nodes if node.proc]
    used, started = cpu_seconds(pids), time.perf_counter()
    busy, total = machine_busy()
    yield
    cores = (cpu_seconds(pids) - used) / (time.perf_counter() - started)
    busy_after, total_after = machine_busy()
    machine = (os.cpu_count() or 1) * (busy_after - busy) / max(1, total_after - total)
    print(
        f"  relay CPU: {cores:.2f} cores over {len(pids)} process(es); machine busy:"
        f" {machine:.2f} of {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
    )


async def run(args: argparse.Namespace) -> None:
    scenarios = args.scenarios.split(",")
    print(f"backend: {args.backend}, nodes: {args.nodes}, cores: {os.cpu_count()}")
    with stack(args.backend, args.pool) as built:
        built.start(args.nodes)
        if "subscribe" in scenarios:
            with cpu_report(built):
                await scenario_subscribe(built, args.devices, args.duration)
        if "append" in scenarios:
            with cpu_report(built):
                await scenario_append(built, args.appenders, args.duration, args.clients)
    if "growth" in scenarios:
        with stack(args.backend, args.pool) as fresh:
            await scenario_growth(fresh, args.nodes, args.growth)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench relay", description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--nodes", type=int, choices=(1, 2), default=1)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--appenders", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=2, help="load processes for appends")
    parser.add_argument("--pool", type=int, default=10, help="PostgreSQL pool of each node")
    parser.add_argument("--growth", type=int, default=1_000_000)
    parser.add_argument("--scenarios", default="subscribe,append,growth")
    args = parser.parse_args(argv)
    if args.backend == "sqlite" and args.nodes > 1:
        parser.error("several nodes need --backend postgres (SQLite has one writer process)")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
