"""The pure enrichers: referring host, campaign, User-Agent classes, country."""

from __future__ import annotations

import pytest

from portal_pulse.counter.campaigns import campaign_of
from portal_pulse.counter.dimensions import record_field
from portal_pulse.counter.geo import country_of
from portal_pulse.counter.referrers import DIRECT, EXCLUDED, INTERNAL, ReferrerClassifier, spam_hosts
from portal_pulse.counter.useragent import UserAgentParser
from tests.counter.test_dimensions import IPAD, IPHONE

ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0 Safari/537.36")
EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
        "Safari/537.36 Edg/131.0.0.0")


def test_spam_list_is_matomos() -> None:
    hosts = spam_hosts()
    assert len(hosts) > 2000 and "0n-line.tv" in hosts and "" not in hosts


@pytest.mark.parametrize(("referrer", "key"), [
    (None, DIRECT), ("", DIRECT),
    ("https://www.Google.com.vn/search?q=a", "google.com.vn"),
    ("android-app://com.google.android.gm/", "com.google.android.gm"),
    ("https://portal.gov.vn/tin-tuc", INTERNAL), ("https://www.portal.gov.vn/", INTERNAL),
    ("http://0n-line.tv/", EXCLUDED), ("http://a.b.100dollars-seo.com/", EXCLUDED),
    ("not a url", EXCLUDED), ("http://[::1", EXCLUDED),
])
def test_referrer_classes(referrer: str | None, key: str) -> None:
    assert ReferrerClassifier(("https://portal.gov.vn",)).classify(referrer) == key


@pytest.mark.parametrize(("query", "key"), [
    ("?utm_source=Google&utm_medium=CPC&utm_campaign=x", "google / cpc / x"),
    ("utm_medium=social", "(none) / social / (none)"),
    ("?utm_source=", ""), ("?q=utm_source", ""), (None, ""), ("?utm_source=a%7Cb%0A", "a|b / (none) / (none)"),
])
def test_campaigns(query: str | None, key: str) -> None:
    assert campaign_of(query) == key


def test_record_field_has_no_separator() -> None:
    client = UserAgentParser().parse("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0")
    field = record_field("/a|b\n\tc", "x", "a|b\t", client.field, "VN", "", 3)
    assert "|" not in field and "\n" not in field and field.count("\t") == 8
    assert field.split("\t")[:5] == ["/a b  c", "x", "a b ", "Firefox", "Linux"]


@pytest.mark.parametrize(("ua", "browser", "os", "device"), [
    (IPHONE, "Mobile Safari", "iOS", "mobile"), (IPAD, "Mobile Safari", "iOS", "tablet"),
    (ANDROID_TABLET, "Chrome", "Android", "tablet"), (EDGE, "Edge", "Windows", "desktop"),
])
def test_user_agent_classes(ua: str, browser: str, os: str, device: str) -> None:
    kind = UserAgentParser().parse(ua)
    assert (kind.browser, kind.os, kind.device) == (browser, os, device)


def test_user_agent_cache_is_bounded() -> None:
    parser = UserAgentParser(cache_size=8)
    for index in range(50):
        parser.parse(f"Mozilla/5.0 junk/{index}")
    info = parser._parse.cache_info()  # type: ignore[attr-defined]
    assert info.currsize == 8 and info.misses == 50


@pytest.mark.parametrize(("address", "country"), [
    ("14.160.0.1", "VN"), ("2001:ee0::1", "VN"), ("8.8.8.8", "US"), ("10.1.2.3", "(unknown)"),
    ("", "(unknown)"), ("junk", "(unknown)"),
])
def test_country(address: str, country: str) -> None:
    assert country_of(address) == country
