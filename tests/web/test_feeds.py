"""The state topic's pure rules: changes rebuild the state exactly; events say what changed."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hive.web import feeds

KEYS = st.sampled_from(["02" + c * 64 for c in "abcdef"])
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
STATES = st.fixed_dictionaries(
    {section: st.dictionaries(KEYS, VALUES, max_size=4) for section in feeds.SECTIONS}
)


@given(STATES, STATES)
def test_a_change_rebuilds_the_new_state(old: feeds.State, new: feeds.State) -> None:
    change = feeds.diff_state(old, new)
    assert feeds.apply_change(old, change) == new
    assert (change == {}) == (old == new)
    # What travels is only what changed.
    for section, delta in change.items():
        assert all(k not in old[section] or old[section][k] != v for k, v in delta["set"].items())
        assert all(k not in new[section] for k in delta["remove"])


def state(members: dict[str, Any], channels: dict[str, list[dict[str, Any]]], **extra: Any) -> Any:
    return {
        "fleet": {"fleet": {"members": len(members)}},
        "members": members,
        "channels": {m: {"edges": e, "total": len(e), "version": 1} for m, e in channels.items()},
        "targets": {},
        "ignored": extra.get("ignored", {}),
    }


A, B, T1, T2 = "02" + "a" * 64, "02" + "b" * 64, "03" + "1" * 64, "03" + "2" * 64
MEMBER = {"status": "active", "clamped": False}


def edge(peer: str, sat: int) -> dict[str, Any]:
    return {"peer": peer, "capacity_sat": sat, "local_share_ppm": 500_000}


def test_events_between_states() -> None:
    before = state({A: MEMBER}, {A: [edge(T1, 1_000_000)]})
    after = state(
        {A: {**MEMBER, "clamped": True}, B: MEMBER},
        {A: [edge(T2, 2_000_000)], B: [edge(T1, 5)]},
        ignored={T1: {"reason": "fleet share 30% above the 25% cap"}},
    )
    events = feeds.events_between(before, after, 7)
    kinds = [(e.kind, e.subject, e.detail.get("peer") or e.detail.get("target")) for e in events]
    assert kinds == [
        ("member-joined", B, None),
        ("clamped", A, None),
        ("channel-opened", A, T2),
        ("channel-closed", A, T1),
        ("target-ignored", None, T1),
    ]
    assert "2,000,000 sat" in events[2].why
    assert events[4].why == "fleet share 30% above the 25% cap"
    assert all(e.at_ms == 7 for e in events)
    # Leaving, and the first look at a fleet (nothing is news yet).
    assert [e.kind for e in feeds.events_between(after, before, 8)][:1] == ["member-left"]
    assert feeds.events_between(feeds.empty_state(), after, 9) == []


def test_build_state_bounds_a_members_channels() -> None:
    edges = [edge("03" + f"{i:064x}", i + 1) for i in range(feeds.MAX_EDGES_PER_MEMBER + 20)]
    built = feeds.build_state(
        node_id=A,
        hive_id="h",
        members=[{"node_id": A, "role": "admin", "status": "active", "self": True}],
        view={"members": [], "stale": [], "targets": [], "coverage": 0},
        records={A: {"version": 3, "state": {"topology": edges}}},
        ignored={},
    )
    shown = built["channels"][A]
    assert shown["total"] == len(edges)
    assert len(shown["edges"]) == feeds.MAX_EDGES_PER_MEMBER
    assert shown["edges"][0]["capacity_sat"] == len(edges)  # largest first
    assert built["members"][A]["fresh"] is False
    assert len(feeds.encode(feeds.envelope("state", "snapshot", 0, built))) < 200_000


def test_build_state_shows_the_fee_policy_applied_to_each_members_channels() -> None:
    roster = [
        {"node_id": A, "role": "admin", "status": "active", "self": True},
        {"node_id": B, "role": "member", "status": "active"},
        {"node_id": T1, "role": "member", "status": "active"},
    ]
    view = {"members": [], "stale": [], "targets": [], "coverage": 0}
    member_fees = {
        "policy": {"base_msat": 0, "ppm": 5},
        "member_channels": {
            B: {"since_ms": 1_761_350_460_000, "previous": {"base_msat": 1000, "ppm": 100}}
        },
    }
    built = feeds.build_state(
        node_id=A,
        hive_id="h",
        members=roster,
        view=view,
        records={},
        ignored={},
        member_fees=member_fees,
    )
    members = built["members"]
    assert members[B]["fees"] == {"base_msat": 0, "ppm": 5, "since_ms": 1_761_350_460_000}
    assert members[A]["fees"] is None  # ourselves
    assert members[T1]["fees"] is None  # not applied to a channel with it (yet)
    off = feeds.build_state(
        node_id=A, hive_id="h", members=roster, view=view, records={}, ignored={}
    )
    assert all(m["fees"] is None for m in off["members"].values())
