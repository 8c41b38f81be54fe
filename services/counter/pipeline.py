"""The ingest pipeline: an ordered list of named steps a hit goes through.

    parse (per transport: JSON body or pixel query)
      → filter_bot → filter_origin → enrich_client → enrich_visitor → validate → write

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

from services.core.clock import Clock
from services.core.errors import ApiError, bad_request, not_found
from services.core.settings import CounterSettings, Settings, SiteSettings
from services.core.web import TrustedNetworks, client_address
from services.counter.bots import BotDetector
from services.counter.calendar_keys import CalendarKeys, calendar_keys
from services.counter.group_commit import GroupCommitWriter
from services.counter.hit import KINDS, CommitResult, Hit, HitBody, Kind
from services.counter.visitor import (
    SecretSource,
    daily_salt,
    event_digest,
    ip_digest,
    path_digest,
    visitor_from_client,
    visitor_from_id,
)


@dataclass(slots=True)
class ParsedHit:
    site: SiteSettings
    kind: Kind
    path: str
    visitor: str | None
    member: bool
    referrer: str | None
    event_id: str | None


def parse_site(settings: Settings, name: str | None) -> SiteSettings:
    if not name:
        raise bad_request("site: required", "missing_site")
    site = settings.site(name)
    if site is None:
        raise not_found("site: not configured", "unknown_site")
    return site


def parse_kind(name: str) -> Kind:
    if name not in KINDS:
        raise bad_request(f"kind: expected one of {', '.join(sorted(KINDS))}", "unknown_kind")
    return Kind(name)


def parse_body(settings: Settings, body: HitBody) -> ParsedHit:
    site = parse_site(settings, body.site)
    return ParsedHit(site, parse_kind(body.kind), body.path, body.visitor or None, body.member,
                     body.referrer or None, body.id or None)


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


#: A step annotates the hit or refuses it (``ApiError``). Steps are synchronous unless
#: they must wait for I/O: then they return the awaitable to wait for.
Step = Callable[[HitContext], Awaitable[None] | None]


def request_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


class HitPipeline:
    def __init__(
        self, settings: Settings, clock: Clock, bots: BotDetector, secret: SecretSource, writer: GroupCommitWriter
    ) -> None:
        counter: CounterSettings = settings.counter
        self._counter = counter
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
        self.steps: tuple[tuple[str, Step], ...] = (
            ("filter_bot", self.filter_bot),
            ("filter_origin", self.filter_origin),
            ("enrich_client", self.enrich_client),
            ("enrich_visitor", self.enrich_visitor),
            ("validate", self.validate),
        )

    async def process(self, parsed: ParsedHit, request: web.Request) -> CommitResult:
        now = self._clock.now()
        ctx = HitContext(parsed, request, now, calendar_keys(now, parsed.site.zone))
        for _name, step in self.steps:
            waiting = step(ctx)
            if waiting is not None:
                await waiting
        return await self.write(ctx)

    def filter_bot(self, ctx: HitContext) -> None:
        ctx.bot = self._bots.is_bot(ctx.request.headers.get("User-Agent"))

    def filter_origin(self, ctx: HitContext) -> None:
        """A browser names the page's origin; it must be one configured for the site."""
        origin = ctx.request.headers.get("Origin")
        if origin is None:
            return
        allowed = ctx.parsed.site.origins
        if origin in allowed or "*" in allowed or origin == request_origin(ctx.request):
            return
        raise ApiError(403, "origin_not_allowed", f"this origin is not configured for site {ctx.parsed.site.name!r}")

    def enrich_client(self, ctx: HitContext) -> None:
        ctx.client_ip = client_address(ctx.request, self._trusted)

    def enrich_visitor(self, ctx: HitContext) -> Awaitable[None] | None:
        """The visitor digest (and the IP digest for the rate limits). Only these need the
        daily salt; a page-supplied visitor id with the limits off needs no secret."""
        if ctx.parsed.visitor is not None and not (self._digest_ip and ctx.client_ip):
            ctx.visitor_digest = visitor_from_id(ctx.parsed.site.name, ctx.parsed.visitor)
            return None
        secret = self._secret.cached
        if secret is None:
            return self._enrich_visitor_when_loaded(ctx)
        self._salted_digests(ctx, secret)
        return None

    async def _enrich_visitor_when_loaded(self, ctx: HitContext) -> None:
        self._salted_digests(ctx, await self._secret.get())

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
        )
        return await self._writer.submit(hit)
