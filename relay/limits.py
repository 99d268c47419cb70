"""Operating limits: who is asking (behind trusted proxies), and how fast they may ask.

Rate limits are token buckets, one per client address and one per connection,
checked before anything costly (signature checks, the database): a flooding
client is answered 429 for the price of a dictionary lookup, so everyone else
keeps being served. Buckets live in this process only; with several relay
nodes behind a load balancer, each node enforces the limits on what it sees.
"""

from __future__ import annotations

import ipaddress
import math
import time
import weakref
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from carnet.protocol import wire
from carnet.relay.storage.base import Quota

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Past this many tracked addresses, idle (refilled) buckets are dropped: a full
# bucket and no bucket are the same thing, so nothing is forgotten that matters.
MAX_TRACKED = 50_000


@dataclass(frozen=True)
class Limits:
    """What one request, one client and one mailbox may take; 0 means no limit."""

    max_entry_bytes: int = wire.MAX_ENTRY_BYTES
    max_batch_entries: int = wire.MAX_BATCH_ENTRIES
    rate_per_address: float = 0.0
    burst_per_address: int = 0
    rate_per_connection: float = 0.0
    burst_per_connection: int = 0
    trusted_proxies: tuple[IPNetwork, ...] = ()
    quota: Quota = field(default_factory=Quota)

    @property
    def max_body_bytes(self) -> int:
        """The largest well-formed append body under these limits (base64 + JSON framing)."""
        per_entry = 4 * math.ceil(self.max_entry_bytes / 3) + 128
        return min(wire.MAX_BODY_BYTES, self.max_batch_entries * per_entry + 1024)


class Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Token buckets by key: `rate` tokens a second, at most `burst` saved up."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        weak: bool = False,
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.clock = clock
        # Per connection, buckets go with the transport they are keyed by.
        self._buckets: dict[Hashable, Bucket] | weakref.WeakKeyDictionary[object, Bucket] = (
            weakref.WeakKeyDictionary() if weak else {}
        )

    def take(self, key: Hashable) -> float:
        """Spend a token: 0.0 if granted, else the seconds until one will be there."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._forget_idle(now)
            bucket = self._buckets[key] = Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.stamp >= full]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


def parse_networks(values: Sequence[str]) -> tuple[IPNetwork, ...]:
    """``["127.0.0.1", "10.0.0.0/8", "::1"]``; raises ValueError on a bad one."""
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def client_address(request: web.BaseRequest, trusted: tuple[IPNetwork, ...]) -> str:
    """The client's address: the TCP peer, or, when that peer is a trusted proxy, the
    rightmost X-Forwarded-For address that is not itself a trusted proxy.

    Only the right end of X-Forwarded-For is trustworthy: each proxy appends the
    address it saw, and anything to its left is whatever the client wrote.
    """
    peer = request.transport.get_extra_info("peername") if request.transport else None
    address = str(peer[0]) if isinstance(peer, tuple) and peer else "unix"
    if not trusted or not _within(address, trusted):
        return address
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        address = hop
        if not _within(hop, trusted):
            break
    return address


def _within(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
