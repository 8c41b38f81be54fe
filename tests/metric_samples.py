"""Read values from a Prometheus exposition with ``prometheus_client.parser``.

Every read FAILS when the series is missing: a renamed metric or a dropped label must
break the test that reads it, never read as ``0.0``.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def samples(text: str) -> list[Sample]:
    """Every sample of the exposition (histogram buckets, ``_sum``, ``_count`` included)."""
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _names(found: list[Sample]) -> str:
    return ", ".join(sorted({s.name for s in found})[:40])


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the one series named ``name`` whose labels are exactly ``labels``."""
    parsed = samples(text)
    matches = [s.value for s in parsed if s.name == name and s.labels == labels]
    if not matches:
        series = [s.labels for s in parsed if s.name == name]
        detail = f"its series: {series}" if series else f"no series of that name; names: {_names(parsed)}"
        raise AssertionError(f"no series {name}{labels} in the exposition ({detail})")
    assert len(matches) == 1, f"{name}{labels} appears {len(matches)} times"
    return float(matches[0])


def total(text: str, name: str, **labels: str) -> float:
    """The sum of every series named ``name`` whose labels include ``labels``; at least one
    must exist."""
    parsed = samples(text)
    matches = [s.value for s in parsed if s.name == name and labels.items() <= s.labels.items()]
    if not matches:
        raise AssertionError(f"no series {name} with labels {labels} (names: {_names(parsed)})")
    return float(sum(matches))
