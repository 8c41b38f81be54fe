"""What a hit is once parsed, and the closed set of outcomes it can have."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import msgspec


class Kind(StrEnum):
    PAGEVIEW = "pageview"
    HEARTBEAT = "heartbeat"
    DOWNLOAD = "download"

    @property
    def code(self) -> str:
        """The one-letter name ``hit.lua`` uses."""
        return {"pageview": "p", "heartbeat": "h", "download": "d"}[self.value]


KINDS = frozenset(kind.value for kind in Kind)


class Outcome(StrEnum):
    """Result of a hit that was accepted (2xx). Everything but ``counted`` is a drop."""

    COUNTED = "counted"
    BOT = "bot"
    DUPLICATE = "duplicate"
    RATE_LIMITED = "rate_limited"
    ORIGIN = "origin"  # a pixel (or any hit without Origin) from a page the site does not name


#: Label value of hits refused with a 4xx (bad input), next to the outcomes above.
REJECTED = "rejected"
RESULTS = (*(o.value for o in Outcome), REJECTED)
UNKNOWN_LABEL = "_unknown"


class HitBody(msgspec.Struct, kw_only=True):
    """The JSON body of ``POST /v1/hit``; unknown fields are ignored, types are strict."""

    site: str
    kind: str = "pageview"
    path: str = "/"
    visitor: str | None = None
    member: bool = False
    referrer: str | None = None
    id: str | None = None
    seq: int | None = None  # the visitor's hit sequence number: retries are recognised by it
    #: The page URL's query string: only utm_source, utm_medium, utm_campaign are read.
    query: str | None = None


HIT_DECODER = msgspec.json.Decoder(HitBody)


@dataclass(slots=True)
class Hit:
    """A hit after the pipeline's filters and enrichers: ready to write, nothing raw."""

    site: str
    kind: Kind
    path_digest: str
    visitor_digest: str
    member: bool
    bot: bool
    now: float
    day: str
    month: str
    hour: str
    event_digest: str
    ip_digest: str
    seq: str = ""  # decimal, or "" when the client sent none
    #: The statistics keys (``Dimensions.field()``), "" to count no dimension.
    dimensions: str = ""

    def record(self) -> str:
        """The hit as one ``hit.lua`` record: the 13 fields joined by ``|`` (none holds one)."""
        return (
            f"{_KIND_CODES[self.kind]}|{self.visitor_digest}|{'1' if self.member else '0'}|"
            f"{'1' if self.bot else '0'}|{int(self.now * 1000)}|{self.day}|{self.month}|{self.hour}|"
            f"{self.path_digest}|{self.event_digest}|{self.ip_digest}|{self.seq}|{self.dimensions}"
        )


_KIND_CODES = {kind: kind.code for kind in Kind}


@dataclass(frozen=True)
class CommitResult:
    outcome: Outcome
    new_visit: bool = False


CODES = {
    0: CommitResult(Outcome.COUNTED),
    4: CommitResult(Outcome.COUNTED, new_visit=True),
    1: CommitResult(Outcome.BOT),
    2: CommitResult(Outcome.DUPLICATE),
    3: CommitResult(Outcome.RATE_LIMITED),
}
