"""The engine on the simulated network: modes, limits, expiry, the kill switch, restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from hive.config import Governance
from hive.governance import Cost, EventKind, ProposalState, Refused
from hive.governance.limits import Limits
from hive.node.port import ChannelState
from hive.store import governance as sql

from .helpers import drain, fee_draft, open_draft, rig

S = ProposalState


async def test_advisor_waits_and_executes_only_after_approval(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path) as r:
        async with r.engine.subscribe() as events:
            status = await r.engine.submit(open_draft(r.peers[1]))
            await trio.sleep(3600)
            assert r.engine.get(status.id).state is S.PENDING  # type: ignore[union-attr]
            assert await r.me.list_channels() == []
            await r.engine.approve(status.id, reason="fine")
            with trio.fail_after(10):
                final = await r.engine.wait_final(status.id)
            kinds = [e.kind for e in drain(events)]
        assert final.state is S.SUCCEEDED
        assert final.decision is not None
        assert final.decision.by == "operator"
        assert final.outcome is not None
        assert final.outcome.cost.capital_sat == 1_000_000
        channels = await r.me.list_channels()
        assert [c.peer_id for c in channels] == [r.peers[1]]
        assert channels[0].state is ChannelState.OPENING
        assert kinds == [EventKind.NEW, EventKind.DECIDED, EventKind.EXECUTING, EventKind.OUTCOME]
        story = [
            row.entry for row in await r.store.run("l", lambda c: sql.ledger_for(c, status.id))
        ]
        assert story == ["proposed", "decided", "reserved", "outcome"]


async def test_autonomous_executes_within_limits_and_names_the_limit_past_them(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    limits = Limits(daily_capital_sat=1_500_000, action_capital_sat=1_000_000)
    async with rig(tmp_path, mode=Governance.AUTONOMOUS, limits=limits) as r:
        first = await r.engine.submit(open_draft(r.peers[1]))
        with trio.fail_after(10):
            done = await r.engine.wait_final(first.id)
        assert done.state is S.SUCCEEDED
        assert done.decision is not None
        assert done.decision.by == "autonomous"
        second = await r.engine.submit(open_draft(r.peers[2]))
        await trio.sleep(1)
        held = r.engine.get(second.id)
        assert held is not None
        assert held.state is S.PENDING
        assert held.held_by == "daily_capital_sat"
        too_big = await r.engine.submit(open_draft(r.peers[3], 2_000_000))
        await trio.sleep(1)
        assert r.engine.get(too_big.id).held_by == "action_capital_sat"  # type: ignore[union-attr]
        unsure = await r.engine.submit(fee_draft(r.peers[1], confidence=0.2))
        await trio.sleep(1)
        assert r.engine.get(unsure.id).held_by == "min_confidence_pct"  # type: ignore[union-attr]
        assert [c.peer_id for c in await r.me.list_channels()] == [r.peers[1]]


async def test_reserve_and_feerate_limits_hold_opens(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with rig(
        tmp_path, mode=Governance.AUTONOMOUS, onchain_sat=1_050_000, limits=Limits()
    ) as r:
        low = await r.engine.submit(open_draft(r.peers[1]))
        hot = await r.engine.submit(
            open_draft(
                r.peers[2],
                20_000,
                params={"peer": r.peers[2], "amount_sat": 20_000, "feerate_perkw": 50_000},
            )
        )
        await trio.sleep(1)
        assert r.engine.get(low.id).held_by == "onchain_reserve_sat"  # type: ignore[union-attr]
        assert r.engine.get(hot.id).held_by == "max_open_feerate_perkw"  # type: ignore[union-attr]


async def test_operator_input_is_checked_and_changes_nothing(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, proposal_ttl_s=60.0) as r:
        with pytest.raises(Refused) as unknown:
            await r.engine.approve("p-nothere")
        assert unknown.value.code == "unknown-id"
        status = await r.engine.submit(fee_draft(r.peers[1]))
        await r.engine.reject(status.id, reason="no")
        with pytest.raises(Refused) as twice:
            await r.engine.approve(status.id)
        assert twice.value.code == "not-pending"
        late = await r.engine.submit(fee_draft(r.peers[2]))
        await trio.sleep(61)
        assert r.engine.get(late.id).state is S.EXPIRED  # type: ignore[union-attr]
        with pytest.raises(Refused) as expired:
            await r.engine.approve(late.id)
        assert expired.value.code == "not-pending"
        with pytest.raises(Refused) as bad:
            await r.engine.submit(fee_draft("02" + "zz" * 32))
        assert bad.value.code == "invalid"
        with pytest.raises(Refused) as kind:
            await r.engine.submit(fee_draft(r.peers[1], kind="launch-rocket"))
        assert kind.value.code == "unknown-kind"
        with pytest.raises(Refused):
            await r.engine.submit(fee_draft(r.peers[1], cost=Cost(), confidence=float("nan")))


async def test_pause_stops_execution_and_survives_restart(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, mode=Governance.AUTONOMOUS) as r:
        await r.engine.pause("maintenance")
        status = await r.engine.submit(fee_draft(r.peers[1]))
        await trio.sleep(5)
        assert r.engine.get(status.id).held_by == "paused"  # type: ignore[union-attr]
    async with rig(tmp_path, mode=Governance.AUTONOMOUS) as r:
        assert r.engine.paused
        assert r.engine.get(status.id).state is S.PENDING  # type: ignore[union-attr]
        await r.engine.resume()
        with trio.fail_after(10):
            final = await r.engine.wait_final(status.id)
        assert final.state is S.FAILED  # the sim node has no channel with that peer: no-op


async def test_subscribers_that_fall_behind_lose_counted_events_and_never_block(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path) as r, r.engine.subscribe(capacity=2) as slow:
        for peer in r.peers[:4]:
            await r.engine.submit(fee_draft(peer))
        assert len(drain(slow)) == 2
        assert r.engine.hub.dropped == 2
        assert r.engine.status()["events"]["dropped"] == 2


async def test_a_change_of_limits_between_starts_is_in_the_ledger(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path):
        pass
    async with rig(tmp_path, limits=Limits(daily_capital_sat=1_000_000)) as r:
        rows = await r.store.run(
            "l", lambda c: sql.ledger_page(c, kind=None, since_ms=None, limit=10)
        )
    entries = [row for row in rows if row.entry == "limits"]
    assert len(entries) == 2  # recorded at the first start, and the change
    assert entries[0].detail["now"]["daily_capital_sat"] == 1_000_000
    assert entries[0].detail["before"]["daily_capital_sat"] == 10_000_000


async def test_a_measured_result_joins_the_story(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    from hive.commands.governance import GovernanceCommands

    async with rig(tmp_path, mode=Governance.AUTONOMOUS) as r:
        status = await r.engine.submit(open_draft(r.peers[1]))
        with trio.fail_after(10):
            await r.engine.wait_final(status.id)
        await r.engine.record_measurement(status.id, {"fees_earned_sat": 42}, by="fees")
        why = await GovernanceCommands(r.engine).why({"id": status.id})
        with pytest.raises(Refused):
            await r.engine.record_measurement("p-0000000000", {}, by="fees")
    assert why["story"][-1] == "measured by fees: fees_earned_sat 42"
    assert why["story"][1] == "approved by autonomous: within every hard limit"


async def test_racing_decisions_on_one_proposal_only_one_wins(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Two deciders at once (the browser's button and lightning-cli; two agents): one wins, the
    other is told it is no longer pending. (Rejecting an approved proposal that has not
    started is allowed on purpose: it withdraws the approval.)"""
    async with rig(tmp_path) as r:
        results: list[str] = []

        async def decide(pid: str, approve: bool, by: str) -> None:
            try:
                if approve:
                    await r.engine.approve(pid, by=by)
                else:
                    await r.engine.reject(pid, by=by)
                results.append("won")
            except Refused as exc:
                results.append(exc.code)

        ids = []
        for approve in (True, False):
            status = await r.engine.submit(fee_draft(r.peers[1]))
            ids.append(status.id)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(decide, status.id, approve, "operator:web")
                nursery.start_soon(decide, status.id, approve, "operator")
        rows = [await r.store.run("l", lambda c, i=i: sql.ledger_for(c, i)) for i in ids]
    assert sorted(results) == ["not-pending", "not-pending", "won", "won"]
    assert [[row.entry for row in story].count("decided") for story in rows] == [1, 1]


async def test_command_parameters_are_checked(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    from hive.commands import CommandError
    from hive.commands.governance import GovernanceCommands

    async with rig(tmp_path) as r:
        cmds = GovernanceCommands(r.engine)
        bad = [
            (cmds.ledger, {"limit": 0}),
            (cmds.ledger, {"limit": 100_000}),
            (cmds.ledger, {"since": "yesterday"}),
            (cmds.ledger, {"bogus": 1}),
            (cmds.approve, {}),
            (cmds.approve, {"id": "p-" + "0" * 10, "reason": "x" * 201}),
            (cmds.reject, {"id": "all"}),
            (cmds.why, {"id": "DROP TABLE"}),
            (cmds.pending, {"x": 1}),
        ]
        for handler, params in bad:
            with pytest.raises(CommandError) as info:
                await handler(params)
            assert info.value.code == CommandError.INVALID_PARAMS, (handler, params)
        with pytest.raises(CommandError) as not_paused:
            await cmds.resume({})
        assert not_paused.value.code == CommandError.REFUSED
        status = await r.engine.submit(fee_draft(r.peers[1]))
        page = await cmds.ledger({"kind": "set-fee", "since": "1h", "limit": 1})
        assert [e["entry"] for e in page["entries"]] == ["proposed"]
        assert page["entries"][0]["proposal_id"] == status.id
        approved = await cmds.approve({"id": "all"})
        assert approved["approved"] == [status.id]
