"""The `hive demo` terminal screen: the fleet table, its legend, sections, and an event log.

Top to bottom: a header (simulated time, the speed really reached, the hive and its size), one
table row per companion with a legend that says what every column counts, a line explaining
refused frames and actor restarts, the registered *sections* (the fleet view from state gossip
is the first), and a scrolling *event log* whose milestones (the formation of the hive) stay
pinned above the lines that scroll. Everything fits 80 columns. On a terminal the screen is
redrawn in place (rich ``Live``); into a pipe or a file, each event is printed once as it
happens and each redraw prints the screen without the log, so nothing is wiped.

Extending it (planner, rebalancing, decision engine, ...) never means rewriting this module:

* **Events.** Anything can write a line into the log: ``screen.log.add(source, kind, text)``
  directly, or through an :class:`hive.events.EventSink` bound to a companion,
  ``screen.log.sink(alias)``. ``hive demo`` passes such a sink to each companion's
  ``Runtime(events=...)``, so an actor that is given ``runtime.events`` and calls
  ``events.emit("proposal", "open 2,000,000 sat to ACINQ: coverage +14 targets")`` shows up in
  the demo's log (and in lightningd's log under the plugin, where the sink is a ``LogSink``).
* **Sections.** A section is a function ``render(statuses)`` that receives every companion's
  status dict (``Runtime.status()`` plus the demo's channel and balance figures) at each redraw
  and returns a rich renderable, or None to show nothing yet. Every screen starts with the
  sections in :data:`SECTIONS`, in order: a new concern writes its function in its own module
  (a ``hive/demo/<concern>.py``, say) and adds one ``(name, render)`` line there;
  ``screen.add_section`` adds one to a single screen. A section for proposals would read
  ``status["engine"]`` (whatever its actor puts in ``Runtime.status()``) and return a small
  table.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

import attrs
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from hive.events import EventSink

Status = Mapping[str, Any]
Section = Callable[[Sequence[Status]], RenderableType | None]

WIDTH = 80
# A fleet peer is "alive" when it answered a ping this recently (simulated seconds).
ALIVE_WITHIN_S = 90
# Refusal reasons that a healthy fleet produces, with what they mean.
EXPECTED_REFUSALS = {
    "not-member": "sent before the receiver knew of the admission: normal after joins",
}
LEGEND = "\n".join(
    (
        "*: admin  chans: confirmed channels  opening: opens not yet confirmed (10 min)",
        "local: our side of confirmed channels  wallet: on-chain funds  M: million sat",
        f"alive: fleet peers that answered a ping within {ALIVE_WITHIN_S} s  "
        "sent, recv: hive frames",
        "rtt ms: mean ping round trip in simulated time (network latency; computing takes",
        "no simulated time)  refused: frames refused, by reason below",
    )
)


@attrs.frozen
class LoggedEvent:
    at_s: float  # simulated seconds since the demo started
    source: str
    kind: str
    text: str
    pinned: bool = False

    def line(self) -> str:
        return f"{clock(self.at_s)} {self.source:<8} {self.text}"


class EventLog:
    """The screen's event log: pinned milestones and the last ``capacity`` other events."""

    def __init__(self, now: Callable[[], float], *, capacity: int = 500, max_pinned: int = 8):
        self._now = now
        self._max_pinned = max_pinned
        self._pinned: list[LoggedEvent] = []
        self._recent: collections.deque[LoggedEvent] = collections.deque(maxlen=capacity)
        self._unprinted: list[LoggedEvent] = []

    def add(self, source: str, kind: str, text: str, *, pinned: bool = False) -> None:
        event = LoggedEvent(self._now(), source, kind, text, pinned)
        if pinned and len(self._pinned) < self._max_pinned:
            self._pinned.append(event)
        else:  # a milestone past the pinned limit scrolls like any other event
            self._recent.append(event)
        self._unprinted.append(event)

    def sink(self, source: str) -> EventSink:
        """An :class:`~hive.events.EventSink` that logs under ``source`` (a companion alias)."""
        return _SourceSink(self, source)

    @property
    def pinned(self) -> list[LoggedEvent]:
        return list(self._pinned)

    def recent(self, count: int) -> list[LoggedEvent]:
        return list(self._recent)[-count:] if count > 0 else []

    def take_unprinted(self) -> list[LoggedEvent]:
        """Events added since the last call, in order (for output that is not a terminal)."""
        taken, self._unprinted = self._unprinted, []
        return taken


@attrs.frozen
class _SourceSink:
    log: EventLog
    source: str

    def emit(self, kind: str, text: str) -> None:
        self.log.add(self.source, kind, text)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away: say so as the exception it is (rich would exit the process
        from inside a task); the CLI ends the run quietly."""
        self.quiet = True
        raise BrokenPipeError("the output was closed")


class Screen:
    """Renders the demo's screen to ``out``; see the module docstring for sections and events."""

    def __init__(self, out: TextIO, now: Callable[[], float], *, width: int | None = None):
        self.tty = out.isatty()
        self.console = _Console(
            file=out,
            width=width or (None if self.tty else WIDTH),
            highlight=False,
            emoji=False,
            color_system="auto" if self.tty else None,
        )
        self.log = EventLog(now)
        self._sections: list[tuple[str, Section]] = []
        for name, render in SECTIONS:
            self.add_section(name, render)
        self._live: Live | None = None

    def add_section(self, name: str, render: Section) -> None:
        """Append a section below the table (drawn in the order added; names are unique)."""
        if any(existing == name for existing, _ in self._sections):
            raise ValueError(f"a section named {name!r} is already on the screen")
        self._sections.append((name, render))

    def body(self, statuses: Sequence[Status], elapsed_s: float, rate: float) -> Group:
        """Everything above the event log (pure: easy to test)."""
        parts: list[RenderableType] = [
            Text(header(statuses, elapsed_s, rate), style="bold"),
            fleet_table(statuses),
            Text(LEGEND, style="dim"),
            Text(refusals_line(statuses)),
            Text(restarts_line(statuses)),
        ]
        for _, render in self._sections:
            part = render(statuses)
            if part is not None:
                parts.append(part)
        return Group(*parts)

    def frame(
        self, statuses: Sequence[Status], elapsed_s: float, rate: float, log_lines: int
    ) -> Group:
        """The whole screen with the event log cut to ``log_lines`` lines (pinned first)."""
        lines = [e.line() for e in self.log.pinned]
        lines += [e.line() for e in self.log.recent(log_lines - len(lines))]
        log = [Text(line, no_wrap=True, overflow="ellipsis") for line in lines[:log_lines]]
        footer = Text("Ctrl-C to stop.", style="dim")
        return Group(self.body(statuses, elapsed_s, rate), Rule("events"), *log, footer)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Redraw in place on a terminal while inside; elsewhere print frames one after another."""
        if not self.tty:
            yield
            return
        with Live(console=self.console, auto_refresh=False, transient=False) as live:
            self._live = live
            try:
                yield
            finally:
                self._live = None

    def show(self, statuses: Sequence[Status], elapsed_s: float, rate: float) -> None:
        """Redraw: in place on a terminal; elsewhere the new events, then the screen's body."""
        if self._live is not None:
            height = self.console.size.height
            used = len(self.console.render_lines(self.body(statuses, elapsed_s, rate)))
            self._live.update(self.frame(statuses, elapsed_s, rate, max(3, height - used - 3)))
            self._live.refresh()
            return
        for event in self.log.take_unprinted():
            self.console.print(Text(event.line()), soft_wrap=True)
        self.console.print(self.body(statuses, elapsed_s, rate))
        self.console.print("Ctrl-C to stop.")
        self.console.file.flush()


# --- the built-in parts (pure functions of the statuses) -----------------------------------------


def header(statuses: Sequence[Status], elapsed_s: float, rate: float) -> str:
    hive_ids = {s["hive"]["hive_id"] for s in statuses if s["hive"]["hive_id"]}
    text = f"hive demo | simulated {clock(elapsed_s)} (x{rate:.0f})"
    if len(hive_ids) == 1:
        size = max(s["hive"]["members"] for s in statuses)
        text += f" | hive {next(iter(hive_ids))[:16]}.. | {plural(size, 'member')}"
    return text


def fleet_table(statuses: Sequence[Status]) -> Table:
    """One row per companion: 77 columns with six-digit frame counts."""
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1), pad_edge=False, show_edge=False)
    table.add_column("member", no_wrap=True)
    for name in ("chans", "opening", "local", "wallet", "alive", "rtt ms", "sent", "recv"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("refused", justify="right", no_wrap=True)
    for s in statuses:
        peers = s["peers"]
        alive = [
            p
            for p in peers
            if p["last_seen_s_ago"] is not None and p["last_seen_s_ago"] < ALIVE_WITHIN_S
        ]
        rtts = [p["rtt_ms"] for p in peers if p["rtt_ms"] is not None]
        msgs = s["messages"]
        table.add_row(
            s["alias"] + ("*" if s["hive"]["role"] == "admin" else ""),
            str(s["channels_normal"]),
            str(s["channels_opening"]),
            millions(s["local_sat"]),
            millions(s["onchain_sat"]),
            f"{len(alive)}/{len(peers)}",
            str(sum(rtts) // len(rtts)) if rtts else "-",
            str(msgs["sent"]),
            str(msgs["received"]),
            str(sum(msgs["rejected"].values())),
        )
    return table


def refusals_line(statuses: Sequence[Status]) -> str:
    totals: collections.Counter[str] = collections.Counter()
    for s in statuses:
        totals.update(s["messages"]["rejected"])
    if not totals:
        return "refused: none"
    parts = []
    for reason, count in sorted(totals.items(), key=lambda item: (-item[1], item[0])):
        meaning = EXPECTED_REFUSALS.get(reason)
        parts.append(f"{reason} {count}" + (f" ({meaning})" if meaning else ""))
    return "refused: " + ", ".join(parts)


def restarts_line(statuses: Sequence[Status]) -> str:
    parts = [
        f"{s['alias']} {a['name']} {a['restarts']}"
        + (f" (last: {a['last_error']})" if a.get("last_error") else "")
        for s in statuses
        for a in s["actors"]
        if a["restarts"]
    ]
    return "actor restarts: " + ("; ".join(parts) if parts else "none")


def fleet_section(statuses: Sequence[Status]) -> RenderableType | None:
    """The fleet view as the first companion with gossip figures sees it (all converge to the
    same view), and every target any companion ignores for saturation."""
    views = [s["gossip"] for s in statuses if s.get("gossip")]
    if not views:
        return None
    fleet = views[0]["fleet"]
    top = ", ".join(
        f"{_name(t)} {t['share'] * 100:.2f}% ({t['members']})" for t in fleet["top_targets"]
    )
    ignored = sorted({target for v in views for target in v["fleet"]["ignored"]})
    lines = [
        f"fleet view: {plural(fleet['members'], 'fresh member')}, {len(fleet['stale'])} stale, "
        f"{plural(fleet['coverage'], 'target')}, {fleet['fleet_capacity_sat']:,} sat",
        f"state gossip: {sum(v['states_sent'] for v in views)} states sent, "
        f"{sum(v['relayed'] for v in views)} relayed",
        f"top targets by fleet share: {top or '-'}",
        "ignored for saturation: "
        + (", ".join(f"{target[:12]}.." for target in ignored) or "none"),
    ]
    return Text("\n".join(lines))


# The sections every demo screen shows below the table, in this order (see the module docstring).
SECTIONS: list[tuple[str, Section]] = [
    ("fleet", fleet_section),
]


def _name(target: Mapping[str, Any]) -> str:
    alias = target.get("alias")
    return str(alias)[:20] if alias else f"{target['target'][:12]}.."


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def millions(sat: int) -> str:
    return f"{sat / 1_000_000:.2f}M"


def clock(seconds: float) -> str:
    total = int(seconds)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"
