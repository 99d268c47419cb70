"""Which records a share covers.

A scope is a conjunction of filters, each optional: practitioner names,
specialties (either matches any of its values, case-insensitively), a first
and a last date (inclusive, compared with the appointment's own calendar date)
and explicit record ids. The empty scope is "everything", which must be asked
for explicitly (``--all``). Narrowing intersects two scopes, so it can only
ever take records out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from carnet.protocol.errors import UsageError


def _fold(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in values if v.strip()))


def _day(text: str, option: str) -> str:
    if not text:
        return ""
    try:
        return date.fromisoformat(text.strip()[:10]).isoformat()
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date like 2024-01-31") from None


def _intersect(a: tuple[str, ...], b: tuple[str, ...], what: str) -> tuple[str, ...]:
    if not a or not b:
        return a or b
    kept = tuple(x for x in a if x.casefold() in {y.casefold() for y in b})
    if not kept:
        raise UsageError(f"narrowed to no {what} at all; revoke the share instead")
    return kept


@dataclass(frozen=True)
class Scope:
    practitioners: tuple[str, ...] = ()
    specialties: tuple[str, ...] = ()
    since: str = ""
    until: str = ""
    ids: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        everything: bool,
        practitioners: Iterable[str] = (),
        specialties: Iterable[str] = (),
        since: str = "",
        until: str = "",
        ids: Iterable[str] = (),
    ) -> Scope:
        scope = cls(
            _fold(practitioners),
            _fold(specialties),
            _day(since or "", "--since"),
            _day(until or "", "--until"),
            _fold(ids),
        )
        if everything and not scope.is_everything:
            raise UsageError("--all shares everything; give either it or filters, not both")
        if not everything and scope.is_everything:
            raise UsageError("say what to share: --all, or filters such as --specialty")
        if scope.since and scope.until and scope.since > scope.until:
            raise UsageError(f"--since {scope.since} is after --until {scope.until}")
        return scope

    @property
    def is_everything(self) -> bool:
        return self == Scope()

    def matches(self, record: dict[str, Any]) -> bool:
        day = str(record.get("start", ""))[:10]
        return (
            (not self.ids or record.get("id") in self.ids)
            and _among(record.get("practitioner"), self.practitioners)
            and _among(record.get("specialty"), self.specialties)
            and (not self.since or day >= self.since)
            and (not self.until or day <= self.until)
        )

    def narrowed(self, other: Scope) -> Scope:
        """Records in both scopes; raises if that leaves a filter with no value."""
        since = max(self.since, other.since)
        until = min(x for x in (self.until, other.until) if x) if self.until or other.until else ""
        if since and until and since > until:
            raise UsageError("narrowed to no dates at all; revoke the share instead")
        return Scope(
            _intersect(self.practitioners, other.practitioners, "practitioner"),
            _intersect(self.specialties, other.specialties, "specialty"),
            since,
            until,
            _intersect(self.ids, other.ids, "record"),
        )

    def describe(self) -> str:
        if self.is_everything:
            return "everything"
        parts = []
        if self.practitioners:
            parts.append(f"practitioner={', '.join(self.practitioners)}")
        if self.specialties:
            parts.append(f"specialty={', '.join(self.specialties)}")
        if self.since:
            parts.append(f"since {self.since}")
        if self.until:
            parts.append(f"until {self.until}")
        if self.ids:
            parts.append(f"{len(self.ids)} chosen records")
        return "; ".join(parts)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Scope:
        raw = json.loads(text)
        return cls(
            tuple(raw.get("practitioners", ())),
            tuple(raw.get("specialties", ())),
            str(raw.get("since", "")),
            str(raw.get("until", "")),
            tuple(raw.get("ids", ())),
        )


def _among(value: Any, allowed: tuple[str, ...]) -> bool:
    if not allowed:
        return True
    folded = str(value or "").strip().casefold()
    return any(folded == option.casefold() for option in allowed)
