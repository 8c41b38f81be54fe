"""The ingest pipeline: an ordered list of named steps a hit goes through.

    parse (per transport: JSON body or pixel query)
      → filter_bot → filter_origin → enrich_client → enrich_visitor → validate → write

A step either refuses the hit (``ApiError``, a 4xx: bad input) or annotates it. Drops
are values from a closed set (``Outcome``): ``bot`` is decided by ``filter_bot`` and
still written, because bots count in the bot figures; ``duplicate`` and
``rate_limited`` are decided atomically by the write (they need Redis state). Every
drop is counted in ``pulse_counter_hits_total{result=...}`` and reported to the client
in ``X-Pulse-Counted: 0; reason=<reason>``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from services.core.clock import Clock
from services.core.errors import ApiError, bad_request, not_found
from services.core.settings import CounterSettings, Settings, SiteSettings
from services.core.web import client_address
from services.counter.bots import BotDetector
from services.counter.calendar_keys import calendar_keys
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


@dataclass
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


@dataclass
class HitContext:
    parsed: ParsedHit
    request: web.Request
    now: float
    bot: bool = False
    client_ip: str = ""
    visitor_digest: str = ""
    ip_digest: str = ""


Step = Callable[[HitContext], Awaitable[None]]


def request_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


class HitPipeline:
    def __init__(
        self, settings: Settings, clock: Clock, bots: BotDetector, secret: SecretSource, writer: GroupCommitWriter
    ) -> None:
        self._counter: CounterSettings = settings.counter
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
        ctx = HitContext(parsed, request, self._clock.now())
        for _name, step in self.steps:
            await step(ctx)
        return await self.write(ctx)

    async def filter_bot(self, ctx: HitContext) -> None:
        ctx.bot = self._bots.is_bot(ctx.request.headers.get("User-Agent"))

    async def filter_origin(self, ctx: HitContext) -> None:
        """A browser names the page's origin; it must be one configured for the site."""
        origin = ctx.request.headers.get("Origin")
        if origin is None:
            return
        allowed = ctx.parsed.site.origins
        if origin in allowed or "*" in allowed or origin == request_origin(ctx.request):
            return
        raise ApiError(403, "origin_not_allowed", f"this origin is not configured for site {ctx.parsed.site.name!r}")

    async def enrich_client(self, ctx: HitContext) -> None:
        ctx.client_ip = client_address(ctx.request, self._counter.trusted_networks)

    async def enrich_visitor(self, ctx: HitContext) -> None:
        site = ctx.parsed.site
        salt = daily_salt(await self._secret.get(), calendar_keys(ctx.now, site.zone).day)
        ctx.ip_digest = ip_digest(salt, site.name, ctx.client_ip) if ctx.client_ip else ""
        if ctx.parsed.visitor is not None:
            ctx.visitor_digest = visitor_from_id(site.name, ctx.parsed.visitor)
        else:
            user_agent = ctx.request.headers.get("User-Agent", "")
            ctx.visitor_digest = visitor_from_client(salt, site.name, ctx.client_ip, user_agent)

    async def validate(self, ctx: HitContext) -> None:
        limits = self._counter
        parsed = ctx.parsed
        if not parsed.path:
            raise bad_request("path: must not be empty", "invalid_body")
        for name, value, limit in (
            ("path", parsed.path, limits.max_path_length),
            ("visitor", parsed.visitor, limits.max_visitor_length),
            ("id", parsed.event_id, limits.max_event_id_length),
            ("referrer", parsed.referrer, limits.max_referrer_length),
        ):
            if value is not None and len(value) > limit:
                raise bad_request(f"{name}: at most {limit} characters", "field_too_long")

    async def write(self, ctx: HitContext) -> CommitResult:
        parsed = ctx.parsed
        cal = calendar_keys(ctx.now, parsed.site.zone)
        hit = Hit(
            site=parsed.site.name,
            kind=parsed.kind,
            path_digest=path_digest(parsed.path),
            visitor_digest=ctx.visitor_digest,
            member=parsed.member,
            bot=ctx.bot,
            now=ctx.now,
            day=cal.day,
            month=cal.month,
            hour=cal.hour,
            event_digest=event_digest(parsed.site.name, parsed.event_id) if parsed.event_id else "",
            ip_digest=ctx.ip_digest,
        )
        return await self._writer.submit(hit)
