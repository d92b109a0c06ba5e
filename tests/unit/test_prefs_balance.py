"""How the PBT mode trims the larger code: at random (§4.6) or matched by dialogue position."""

from __future__ import annotations

from collections import Counter

import pytest

from pbt.errors import ValidationError
from pbt.prefs import select_pairs
from pbt.prefs.engine import Pair


def _pairs(spec: dict[tuple[str, int], int]) -> list[tuple[str, Pair]]:
    """(code, level) -> how many train pairs of that code whose reply is at that level."""
    out = []
    for (code, level), n in spec.items():
        for i in range(n):
            out.append(
                ("train", Pair(f"t-{code}-{level}-{i}", f"q{level}", f"{level}.{i}", "x", 2, 0, 0, code))
            )
    return out


def _level(pair: Pair) -> int:
    return int(pair.chosen.split(".")[0])


# the weak agent's first reply (level 3) is mostly accept, the strong agent's (level 4) mostly resist
POOL = {("accept", 3): 29, ("accept", 4): 6, ("resist", 3): 26, ("resist", 4): 30}


def _composition(items) -> Counter:
    return Counter((p.code, _level(p)) for _, p in items)


def test_overall_balance_samples_the_larger_code_at_random():
    kept = select_pairs(_pairs(POOL), "pbt", seed=0)
    got = _composition(kept)
    assert got["accept", 3] + got["accept", 4] == got["resist", 3] + got["resist", 4] == 35
    assert (got["accept", 3], got["accept", 4]) == (29, 6)  # the smaller code is kept whole
    # same result without a position function, and the default is "overall"
    assert kept == select_pairs(_pairs(POOL), "pbt", seed=0, balance="overall", position=_level)


def test_position_balance_matches_the_smaller_code_at_each_level_then_fills():
    kept = select_pairs(_pairs(POOL), "pbt", seed=0, balance="position", position=_level)
    got = _composition(kept)
    # level 3: 26 resist available for 29 accept -> all 26; level 4: 6 for 6; 3 more fill from level 4
    assert got == Counter({("accept", 3): 29, ("accept", 4): 6, ("resist", 3): 26, ("resist", 4): 9})
    assert kept == [item for item in _pairs(POOL) if item in kept]  # the original order is kept
    again = select_pairs(_pairs(POOL), "pbt", seed=0, balance="position", position=_level)
    assert again == kept  # deterministic for a seed
    other = select_pairs(_pairs(POOL), "pbt", seed=1, balance="position", position=_level)
    assert _composition(other) == got and other != kept  # another seed: other pairs, same counts


def test_position_balance_when_accept_is_the_larger_code():
    pool = {("accept", 3): 40, ("accept", 4): 5, ("resist", 3): 4, ("resist", 4): 10}
    got = _composition(select_pairs(_pairs(pool), "pbt", seed=2, balance="position", position=_level))
    assert got == Counter({("accept", 3): 9, ("accept", 4): 5, ("resist", 3): 4, ("resist", 4): 10})


def test_unknown_balance_names_the_field():
    with pytest.raises(ValidationError) as info:
        select_pairs(_pairs(POOL), "pbt", seed=0, balance="per-level")  # type: ignore[arg-type]
    assert info.value.field == "pbt_balance"


def test_pair_agents_keeps_one_agents_replies_in_every_mode():
    import prefs_trees as T

    from pbt.prefs import build_preferences_by_mode
    from pbt.tree.io import parse_tree

    trees = [parse_tree(r, "reference") for r in (T.RESIST, T.ACCEPT, T.LEVELS, T.NOTHING)]
    modes = ["labelled", "accept", "resist", "pbt", "all"]
    both = build_preferences_by_mode(trees, modes, fractions=(1, 0, 0))
    speakers = {r["agent"] for r in both["all"].records}
    assert speakers == {0, 1}  # the fixture has pairs of both agents' replies
    for name, agent in (("a", 0), ("b", 1)):
        only = build_preferences_by_mode(trees, modes, fractions=(1, 0, 0), pair_agents=name)
        for mode in modes:
            expected = [r for r in both[mode].records if r["agent"] == agent] if mode != "pbt" else None
            got = only[mode].records
            assert all(r["agent"] == agent for r in got)
            if expected is not None:
                assert got == expected
        assert only["all"].counts()["pairs_found"] == both["all"].counts()["pairs_found"]  # mined: all
    with pytest.raises(ValidationError) as info:
        build_preferences_by_mode(trees, ["pbt"], pair_agents="c")  # type: ignore[arg-type]
    assert info.value.field == "pair_agents"
