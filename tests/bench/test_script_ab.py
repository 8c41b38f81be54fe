"""``bench.script_ab`` compares two ``hit.lua`` versions only when they count alike: a
version that answers or stores differently stops the comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.script_ab import Differ, run, script_at
from portal_pulse.core.scripts import Script
from portal_pulse.counter.hit import CODES


def changed(old: str, new: str) -> Script:
    source = script_at(".").source
    assert old in source
    return Script("hit", source.replace(old, new))


async def test_the_same_script_on_both_sides_compares(tmp_path: Path) -> None:
    sides = await run((("a", script_at(".")), ("b", script_at("."))), 11, 120, 2, tmp_path)
    assert [len(side.cpu_us) for side in sides] == [2, 2]
    assert sides[0].codes == sides[1].codes
    assert set(sides[0].codes) == {repr(CODES[4])}  # every hit counted, each a new visit
    assert len(sides[0].codes) == 240


@pytest.mark.parametrize(("old", "new", "why"), [
    ("bump_page(pd, 'views')", "bump_page(pd, 'view')", "different data"),
    ("          code = 4\n", "          code = 0\n", "different codes"),
])
async def test_a_script_that_counts_differently_is_not_compared(tmp_path: Path, old: str, new: str,
                                                                 why: str) -> None:
    with pytest.raises(Differ, match=why):
        await run((("shipped", script_at(".")), ("changed", changed(old, new))), 11, 120, 2, tmp_path)
