"""The ingest pipeline: an ordered list of named steps a hit goes through.

    parse (per transport: JSON body or pixel query)
      → filter_bot → filter_origin → enrich_client → enrich_visitor → validate
      → enrich_dimensions → write

A step either refuses the hit (``ApiError``, a 4xx: bad input) or annotates it. Drops
are values from a closed set (``Outcome``): ``bot`` is decided by ``filter_bot`` and
still written, because bots count in the bot figures; ``duplicate`` and
``rate_limited`` are decided atomically by the write (they need Redis state). Every
drop is counted in ``pulse_ingest_hits_total{result=...}`` and reported to the client
in ``X-Pulse-Counted: 0; reason=<reason>``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web
from yarl import URL

from portal_pulse.core.clock import Clock
from portal_pulse.core.errors import ApiError, bad_request, not_found
from portal_pulse.core.settings import CounterSettings, Settings, SiteSettings
from portal_pulse.core.web import TrustedNetworks, client_address
from portal_pulse.counter.bots import BotDetector
from portal_pulse.counter.calendar_keys import CalendarKeys, calendar_keys
from portal_pulse.counter.enrich import DimensionEnricher
from portal_pulse.counter.hit import KINDS, CommitResult, Hit, HitBody, Kind, Outcome
from portal_pulse.counter.metrics import CounterMetrics
from portal_pulse.counter.visitor import (
    daily_salt,
    event_digest,
    ip_digest,
    path_digest,
    visitor_from_client,
    visitor_from_id,
)
from portal_pulse.counter.writer import HitWriter


@dataclass(slots=True)
class ParsedHit:
    site: SiteSettings
    kind: Kind
    path: str
    visitor: str | None
    member: bool
    referrer: str | None
    event_id: str | None
    #: The page URL's query string (only its UTM parameters are read).
    query: str | None = None
    seq: int | None = None


#: Sequence numbers are whole numbers a JavaScript number holds exactly.
MAX_SEQ = 2**53 - 1


def parse_seq(value: int | str | None, code: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > 16:
            raise bad_request(f"seq: expected a whole number from 0 to {MAX_SEQ}", code)
        value = int(value)
    if not 0 <= value <= MAX_SEQ:
        raise bad_request(f"seq: expected a whole number from 0 to {MAX_SEQ}", code)
    return value


def parse_site(settings: Settings, name: str | None) -> SiteSettings:
    if not name:
        raise bad_request("site: required", "missing_site")
    site = settings.site(name)
    if site is None:
        raise not_found("site: not configured", "unknown_site")
    return site


#: A kind by its name: a dict look-up, where ``Kind(name)`` (EnumType.__call__) cost ~0.5 µs a hit.
_KIND_BY_NAME: dict[str, Kind] = {kind.value: kind for kind in Kind}


def parse_kind(name: str) -> Kind:
    kind = _KIND_BY_NAME.get(name)
    if kind is None:
        raise bad_request(f"kind: expected one of {', '.join(sorted(KINDS))}", "unknown_kind")
    return kind


def parse_body(settings: Settings, body: HitBody) -> ParsedHit:
    site = parse_site(settings, body.site)
    return ParsedHit(site, parse_kind(body.kind), body.path, body.visitor or None, body.member,
                     body.referrer or None, body.id or None, body.query or None,
                     parse_seq(body.seq, "invalid_body"))


FLAGS = {"1": True, "true": True, "0": False, "false": False}


def parse_flag(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name)
    if value is None:
        return False
    if value not in FLAGS:
        raise bad_request(f"{name}: expected 1, 0, true or false", "invalid_query")
    return FLAGS[value]


def parse_query(settings: Settings, query: Mapping[str, str]) -> ParsedHit:
    site = parse_site(settings, query.get("site"))
    return ParsedHit(
        site,
        parse_kind(query.get("kind", "pageview")),
        query.get("path", "/"),
        query.get("visitor") or None,
        parse_flag(query, "member"),
        query.get("referrer") or None,
        query.get("id") or None,
        query.get("query") or None,
        parse_seq(query.get("seq"), "invalid_query"),
    )


@dataclass(slots=True)
class HitContext:
    parsed: ParsedHit
    request: web.Request
    now: float
    cal: CalendarKeys
    bot: bool = False
    client_ip: str = ""
    visitor_digest: str = ""
    ip_digest: str = ""
    dimensions: str = ""
    drop: Outcome | None = None  # set by a step that drops the hit before the write


#: A step annotates the hit or refuses it (``ApiError``). Steps are synchronous unless
#: they must wait for I/O: then they return the awaitable to wait for.
Step = Callable[[HitContext], Awaitable[None] | None]


def request_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def referer_origin(referer: str) -> str | None:
    """The origin (``scheme://host[:port]``) of a Referer, or None if it names none."""
    try:
        url = URL(referer)
    except (ValueError, TypeError):
        return None
    if not url.absolute or url.scheme not in ("http", "https") or not url.host:
        return None
    return str(url.origin())


class HitPipeline:
    def __init__(
        self, settings: Settings, clock: Clock, bots: BotDetector, secret: bytes, writer: HitWriter,
        metrics: CounterMetrics,
    ) -> None:
        self._metrics = metrics
        counter: CounterSettings = settings.counter
        self._trusted = TrustedNetworks(counter.trusted_networks)
        #: The IP digest only feeds the rate limits: not computed when they are off.
        self._digest_ip = counter.rate_limits_enabled
        self._field_limits = (
            ("path", counter.max_path_length),
            ("visitor", counter.max_visitor_length),
            ("id", counter.max_event_id_length),
            ("referrer", counter.max_referrer_length),
        )
        self._clock = clock
        self._bots = bots
        self._secret = secret
        self._writer = writer
        self._dimensions = DimensionEnricher(settings) if counter.statistics_enabled else None
        self.steps: tuple[tuple[str, Step], ...] = (
            ("filter_bot", self.filter_bot),
            ("filter_origin", self.filter_origin),
            ("enrich_client", self.enrich_client),
            ("enrich_visitor", self.enrich_visitor),
            ("validate", self.validate),
            ("enrich_dimensions", self.enrich_dimensions),
        )

    async def process(self, parsed: ParsedHit, request: web.Request) -> CommitResult:
        now = self._clock.now()
        ctx = HitContext(parsed, request, now, calendar_keys(now, parsed.site.zone))
        for _name, step in self.steps:
            waiting = step(ctx)
            if waiting is not None:
                await waiting
            if ctx.drop is not None:
                result = CommitResult(ctx.drop)
                self._metrics.dropped(parsed.site.name, parsed.kind, result)
                return result
        return await self.write(ctx)

    def filter_bot(self, ctx: HitContext) -> None:
        ctx.bot = self._bots.is_bot(ctx.request.headers.get("User-Agent"))

    def filter_origin(self, ctx: HitContext) -> None:
        """A browser names the page's origin; it must be one configured for the site (403).

        An ``<img>`` (the pixel) sends no Origin, only a Referer: when there is one, its
        origin must be allowed too, or the hit is dropped (``origin``, still answered with
        a GIF: the page shows nothing broken). Without either header the hit is counted.
        """
        headers = ctx.request.headers
        origin = headers.get("Origin")
        if origin is not None:
            if not self._origin_allowed(ctx, origin):
                raise ApiError(403, "origin_not_allowed",
                               f"this origin is not configured for site {ctx.parsed.site.name!r}")
            return
        referer = headers.get("Referer")
        if referer and not self._origin_allowed(ctx, referer_origin(referer)):
            ctx.drop = Outcome.ORIGIN

    @staticmethod
    def _origin_allowed(ctx: HitContext, origin: str | None) -> bool:
        allowed = ctx.parsed.site.origins
        if "*" in allowed:
            return True
        return origin is not None and (origin in allowed or origin == request_origin(ctx.request))

    def enrich_client(self, ctx: HitContext) -> None:
        ctx.client_ip = client_address(ctx.request, self._trusted)

    def enrich_visitor(self, ctx: HitContext) -> None:
        """The visitor digest (and the IP digest for the rate limits). Only these need the
        daily salt; a page-supplied visitor id with the limits off needs no salt."""
        if ctx.parsed.visitor is not None and not (self._digest_ip and ctx.client_ip):
            ctx.visitor_digest = visitor_from_id(ctx.parsed.site.name, ctx.parsed.visitor)
            return
        self._salted_digests(ctx, self._secret)

    def _salted_digests(self, ctx: HitContext, secret: bytes) -> None:
        site = ctx.parsed.site
        salt = daily_salt(secret, ctx.cal.day)
        if self._digest_ip and ctx.client_ip:
            ctx.ip_digest = ip_digest(salt, site.name, ctx.client_ip)
        if ctx.parsed.visitor is not None:
            ctx.visitor_digest = visitor_from_id(site.name, ctx.parsed.visitor)
        else:
            user_agent = ctx.request.headers.get("User-Agent", "")
            ctx.visitor_digest = visitor_from_client(salt, site.name, ctx.client_ip, user_agent)

    def validate(self, ctx: HitContext) -> None:
        parsed = ctx.parsed
        if not parsed.path:
            raise bad_request("path: must not be empty", "invalid_body")
        values = (parsed.path, parsed.visitor, parsed.event_id, parsed.referrer)
        for (name, limit), value in zip(self._field_limits, values, strict=True):
            if value is not None and len(value) > limit:
                raise bad_request(f"{name}: at most {limit} characters", "field_too_long")

    def enrich_dimensions(self, ctx: HitContext) -> None:
        """Statistics keys (page, referring host, campaign, browser, os, device, country,
        bot name): derived here, only the derived names reach Redis."""
        if self._dimensions is not None:
            ctx.dimensions = self._dimensions.field(ctx)

    async def write(self, ctx: HitContext) -> CommitResult:
        parsed = ctx.parsed
        cal = ctx.cal
        site = parsed.site.name
        hit = Hit(
            site=site,
            kind=parsed.kind,
            path_digest=path_digest(parsed.path),
            visitor_digest=ctx.visitor_digest,
            member=parsed.member,
            bot=ctx.bot,
            now=ctx.now,
            day=cal.day,
            month=cal.month,
            hour=cal.hour,
            event_digest=event_digest(site, parsed.event_id) if parsed.event_id else "",
            ip_digest=ctx.ip_digest,
            dimensions=ctx.dimensions,
            seq="" if parsed.seq is None else str(parsed.seq),
        )
        return await self._writer.submit(hit)
