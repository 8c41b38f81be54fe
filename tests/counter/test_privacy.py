"""Nothing raw is stored: no IP, User-Agent, visitor id or event id in Redis. Paths and
referring hosts are stored only as statistics (the ``top:`` hashes and the statistics
log they are counted from, by design: the ``pages`` and ``referrers`` dimensions), never
next to a visitor."""

from __future__ import annotations

from tests.counter.conftest import Counter

IP = "203.0.113.77"
UA = "Mozilla/5.0 (X11; Linux x86_64) PrivacyProbeBrowser/9.9"
VISITOR = "visitor-secret-4f2a"
EVENT = "event-id-9d1c"
PATH = "/private/path-7e3b"


async def test_redis_holds_only_digests(counter: Counter) -> None:
    headers = {"X-Forwarded-For": IP}
    await counter.hit(ua=UA, headers=headers, visitor=VISITOR, id=EVENT, path=PATH, referrer="http://ref.test/x")
    await counter.hit(ua=UA, headers=headers, visitor=VISITOR, kind="download", path=PATH)
    await counter.client.get("/v1/hit.gif", params={"site": "default", "path": PATH},
                             headers={"User-Agent": UA, "X-Forwarded-For": IP})
    await counter.stats()
    client = counter.app_redis()
    dump: list[str] = []
    statistics: list[str] = []
    keys = [key async for key in client.scan_iter(count=1000)]
    assert keys
    for key in keys:
        kind = await client.type(key)
        value: object = None
        if kind == b"string":
            value = await client.get(key)
        elif kind == b"hash":
            value = await client.hgetall(key)
        elif kind == b"set":
            value = await client.smembers(key)
        elif kind == b"zset":
            value = await client.zrange(key, 0, -1)
        elif kind == b"list":
            value = await client.lrange(key, 0, -1)
        else:
            assert kind == b"none", kind  # (expired meanwhile) every kind of key is read
        is_statistics = key.startswith((b"pulse:{default}:top:", b"pulse:{default}:stats:log"))
        (statistics if is_statistics else dump).append(f"{key!r} {value!r}")
    text = "\n".join(dump)
    for raw in (IP, "203.0.113", UA, "PrivacyProbe", VISITOR, EVENT, PATH, "ref.test"):
        assert raw not in text, raw
    stats_text = "\n".join(statistics)
    for raw in (IP, "203.0.113", UA, VISITOR, EVENT):
        assert raw not in stats_text, raw
    assert PATH in stats_text and "ref.test" in stats_text
    assert all(bytes(key).startswith(b"pulse:{default}:") for key in keys)
