"""The demo's screen (80 columns, honest columns, pinned formation, sections, events) and its
clock (simulated time does not advance while the process computes)."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
import trio
from rich.console import Console
from rich.text import Text

from hive.demo.clock import IdleClock
from hive.demo.screen import Screen


def status(alias: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "alias": alias,
        "hive": {"hive_id": "ab" * 32, "role": "member", "members": 1, "member": True},
        "node_id": "02" + "ab" * 32,
        "channels_normal": 2,
        "channels_opening": 1,
        "local_sat": 4_000_000,
        "onchain_sat": 13_994_000,
        "peers": [
            {"last_seen_s_ago": 10.0, "rtt_ms": 200},
            {"last_seen_s_ago": None, "rtt_ms": None},
        ],
        "messages": {"sent": 123_456, "received": 654_321, "rejected": {"not-member": 2}},
        "actors": [{"name": "gossip", "restarts": 0, "last_error": None}],
    }
    base.update(overrides)
    return base


def render(screen: Screen, statuses: list[dict[str, Any]], log_lines: int = 10) -> list[str]:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    with console.capture() as capture:
        console.print(screen.frame(statuses, 3725.0, 58.7, log_lines))
    return capture.get().splitlines()


def test_everything_fits_80_columns_and_rows_do_not_wrap() -> None:
    screen = Screen(io.StringIO(), lambda: 0.0)
    statuses = [status(f"hive-{i}") for i in range(1, 13)]
    lines = render(screen, statuses)
    assert max(len(line) for line in lines) <= 80
    rows = [line for line in lines if line.startswith("hive-")]
    assert len(rows) == 12
    expected = "hive-1 2 1 4.00M 13.99M 1/2 200 123456 654321 2"
    assert rows[0].split() == expected.split()


def test_header_legend_refusals_and_one_member() -> None:
    screen = Screen(io.StringIO(), lambda: 0.0)
    admin = status("hive-1", hive={"hive_id": "ab" * 32, "role": "admin", "members": 1})
    text = "\n".join(render(screen, [admin]))
    assert "hive demo | simulated 01:02:05 (x59) | hive abababababababab.. | 1 member\n" in text
    assert "hive-1*" in text
    assert "opening: opens not yet confirmed" in text
    assert "rtt ms: mean ping round trip in simulated time" in text
    assert "refused: not-member 2 (sent before the receiver knew of the admission" in text
    assert "actor restarts: none" in text


def test_formation_stays_pinned_while_later_events_scroll() -> None:
    now = [0.0]
    screen = Screen(io.StringIO(), lambda: now[0])
    screen.log.add("hive-1", "formed", "hive-genesis -> hive abab.., admin", pinned=True)
    for i in range(50):
        now[0] = 60.0 * i
        screen.log.sink("hive-2").emit("channel", f"event {i}")
    lines = render(screen, [status("hive-1")], log_lines=4)
    log = lines[lines.index(next(line for line in lines if "events" in line)) + 1 :]
    assert log[0] == "00:00:00 hive-1   hive-genesis -> hive abab.., admin"
    assert log[1:4] == [
        "00:47:00 hive-2   event 47",
        "00:48:00 hive-2   event 48",
        "00:49:00 hive-2   event 49",
    ]
    assert log[4] == "Ctrl-C to stop."


def test_sections_are_drawn_in_order_and_names_are_unique() -> None:
    screen = Screen(io.StringIO(), lambda: 0.0)
    screen.add_section("proposals", lambda statuses: Text(f"proposals: {len(statuses)} pending"))
    screen.add_section("nothing yet", lambda statuses: None)
    text = "\n".join(render(screen, [status("hive-1"), status("hive-2")]))
    assert "proposals: 2 pending" in text
    with pytest.raises(ValueError, match="already on the screen"):
        screen.add_section("proposals", lambda statuses: None)


def test_outside_a_terminal_each_event_is_printed_once() -> None:
    out = io.StringIO()
    screen = Screen(out, lambda: 5.0)
    screen.log.add("hive-2", "joined", "hive-join -> member #2", pinned=True)
    screen.show([status("hive-1")], 5.0, 60.0)
    screen.show([status("hive-1")], 6.0, 60.0)
    text = out.getvalue()
    assert text.count("00:00:05 hive-2   hive-join -> member #2") == 1
    assert text.count("Ctrl-C to stop.") == 2


def test_idle_clock_stands_still_while_computing_and_runs_while_waiting() -> None:
    clock = IdleClock(rate=100.0)
    seen: dict[str, float] = {}

    async def main() -> None:
        start = trio.current_time()
        # computing: 5 simulated seconds on a rate clock, none here
        time.sleep(0.05)  # noqa: ASYNC251
        seen["computing"] = trio.current_time() - start
        await trio.sleep(10.0)  # waiting: 10 simulated seconds = 0.1 s of wall time
        seen["waited"] = trio.current_time() - start

    wall = time.perf_counter()
    trio.run(main, clock=clock, instruments=[clock])
    assert seen["computing"] == 0.0
    assert seen["waited"] == pytest.approx(10.0, abs=0.01)
    assert time.perf_counter() - wall >= 0.1 + 0.05


@pytest.mark.parametrize("rate", [0.0, -1.0, float("inf"), float("nan")])
def test_idle_clock_needs_a_positive_finite_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="positive finite"):
        IdleClock(rate=rate)


def test_idle_clock_wakes_sleepers_exactly_at_their_deadlines() -> None:
    # The OS overshoots each wait by up to a millisecond or two (0.3 s at rate 300); none of it
    # may show as simulated time, or round trips would grow with --speed.
    clock = IdleClock(rate=300.0)
    late: list[float] = []

    async def main() -> None:
        for gap in (0.05, 0.3, 1.0, 2.5, 0.2):
            deadline = trio.current_time() + gap
            await trio.sleep_until(deadline)
            late.append(trio.current_time() - deadline)

    trio.run(main, clock=clock, instruments=[clock])
    assert late == pytest.approx([0.0] * 5, abs=1e-9)
