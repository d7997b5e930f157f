"""The strategy book: which commitments and reports a member holds, pure (``now_ms`` is
always passed in).

A :class:`~hive.protocol.strategy.records.StrategyCommit` enters the book unless (refusal
codes): ``known`` (held already; ends the flood), ``other-hive``, ``bad-signature``,
``not-member`` (the issuer is not an active member), ``bad-commit`` (reveal time before the
issue time, a delay longer than ``max_delay_ms``, issued more than ``max_skew_ms`` in the
future), ``expired`` (its reveal grace is over: past ``reveal_not_before + reveal_grace_ms``),
``rate-limited`` (the issuer has ``max_per_window`` commitments issued within ``window_ms``
before this one), ``full``.

A :class:`~hive.protocol.strategy.records.StrategyReport` enters the book unless:
``other-hive``, ``bad-signature``, ``not-member``, ``no-commitment`` (no held commitment of its
issuer equals SHA-256 over its salt and body: the report or the salt was changed, or the
commitment is not here yet), ``known`` (this commitment was revealed already: a replay),
``early`` (revealed before ``reveal_not_before``, or received before it by our clock, with
``max_skew_ms`` of tolerance), ``bad-report`` (an empty or reversed window, one longer than
``max_window_ms``, a window ending after the commitment was made, a reveal time in the
future), ``expired`` (older than ``report_ttl_ms``), ``full``.

Replays: a commitment stays in the book until its report expires (or its reveal grace ends
unrevealed); after that a replayed commitment is ``expired`` (its reveal grace is long over)
and a replayed report finds no commitment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from hive.protocol.signed import set_digest
from hive.protocol.strategy.records import StrategyCommit, StrategyReport
from hive.protocol.strategy.sign import (
    commit_digest,
    commit_signed,
    commitment_of,
    report_digest,
    report_signed,
)

KNOWN = "known"
OTHER_HIVE = "other-hive"
BAD_SIGNATURE = "bad-signature"
NOT_MEMBER = "not-member"
BAD_COMMIT = "bad-commit"
EXPIRED = "expired"
RATE_LIMITED = "rate-limited"
FULL = "full"
NO_COMMITMENT = "no-commitment"
EARLY = "early"
BAD_REPORT = "bad-report"

DAY_MS = 86_400_000
Key = tuple[bytes, bytes]  # (issuer hive key, commitment)
KeyCheck = Callable[[bytes], bool]


@attrs.frozen
class StrategyRules:
    max_delay_ms: int = 30 * DAY_MS
    reveal_grace_ms: int = 7 * DAY_MS
    report_ttl_ms: int = 30 * DAY_MS
    max_window_ms: int = 30 * DAY_MS
    max_per_window: int = 8
    window_ms: int = DAY_MS
    max_skew_ms: int = 600_000
    max_commits: int = 4096
    max_reports: int = 4096

    def __attrs_post_init__(self) -> None:
        if self.report_ttl_ms < self.reveal_grace_ms:
            raise ValueError("report_ttl_ms must be at least reveal_grace_ms (replays)")


class StrategyRefused(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def key_of(report: StrategyReport) -> Key:
    return report.body.issuer, commitment_of(report.body, report.salt)


class StrategyBook:
    def __init__(self, hive_id: bytes, rules: StrategyRules | None = None) -> None:
        self.hive_id = hive_id
        self.rules = rules or StrategyRules()
        self._commits: dict[Key, StrategyCommit] = {}
        self._reports: dict[Key, StrategyReport] = {}

    # --- reading -------------------------------------------------------------------------------

    def commits(self) -> list[StrategyCommit]:
        return sorted(self._commits.values(), key=lambda c: (c.body.issued_ms, commit_digest(c)))

    def reports(self) -> list[StrategyReport]:
        return sorted(self._reports.values(), key=lambda r: (r.revealed_ms, report_digest(r)))

    def pending(self) -> list[StrategyCommit]:
        """Commitments not revealed yet."""
        return [
            c for c in self.commits() if (c.body.issuer, c.body.commitment) not in self._reports
        ]

    def commit_of(self, report: StrategyReport) -> StrategyCommit | None:
        return self._commits.get(key_of(report))

    def digest(self) -> bytes:
        return set_digest(
            b"hive/v1/strategy-book",
            (commit_digest(c) for c in self._commits.values()),
            (report_digest(r) for r in self._reports.values()),
        )

    # --- changing ------------------------------------------------------------------------------

    def check_commit(self, commit: StrategyCommit, now_ms: int, is_member: KeyCheck) -> None:
        """Raise StrategyRefused unless ``commit`` may enter the book."""
        body = commit.body
        r = self.rules
        if (body.issuer, body.commitment) in self._commits:
            raise StrategyRefused(KNOWN, "commitment already held")
        if body.hive_id != self.hive_id:
            raise StrategyRefused(OTHER_HIVE, f"commitment is for hive {body.hive_id.hex()}")
        if not commit_signed(commit):
            raise StrategyRefused(
                BAD_SIGNATURE, f"signature does not verify for {body.issuer.hex()}"
            )
        if not is_member(body.issuer):
            raise StrategyRefused(NOT_MEMBER, f"issuer {body.issuer.hex()} is not an active member")
        if body.reveal_not_before_ms < body.issued_ms:
            raise StrategyRefused(BAD_COMMIT, "reveal time is before the issue time")
        if body.reveal_not_before_ms - body.issued_ms > r.max_delay_ms:
            raise StrategyRefused(BAD_COMMIT, f"delay longer than {r.max_delay_ms} ms")
        if body.issued_ms > now_ms + r.max_skew_ms:
            raise StrategyRefused(BAD_COMMIT, "commitment is issued in the future")
        if now_ms >= body.reveal_not_before_ms + r.reveal_grace_ms:
            raise StrategyRefused(EXPIRED, "its reveal grace is over")
        recent = sum(
            1
            for c in self._commits.values()
            if c.body.issuer == body.issuer
            and body.issued_ms - r.window_ms < c.body.issued_ms <= body.issued_ms
        )
        if recent >= r.max_per_window:
            raise StrategyRefused(
                RATE_LIMITED,
                f"issuer has {recent} commitments within {r.window_ms} ms (at most "
                f"{r.max_per_window})",
            )
        if len(self._commits) >= r.max_commits:
            raise StrategyRefused(FULL, f"the book holds {r.max_commits} commitments")

    def add_commit(self, commit: StrategyCommit, now_ms: int, is_member: KeyCheck) -> bytes:
        """Accept ``commit`` (raises StrategyRefused); return its digest."""
        self.check_commit(commit, now_ms, is_member)
        self._commits[commit.body.issuer, commit.body.commitment] = commit
        return commit_digest(commit)

    def check_report(
        self, report: StrategyReport, now_ms: int, is_member: KeyCheck
    ) -> StrategyCommit:
        """Raise StrategyRefused unless ``report`` may enter the book; return its commitment."""
        body = report.body
        r = self.rules
        if body.hive_id != self.hive_id:
            raise StrategyRefused(OTHER_HIVE, f"report is for hive {body.hive_id.hex()}")
        if not report_signed(report):
            raise StrategyRefused(
                BAD_SIGNATURE, f"signature does not verify for {body.issuer.hex()}"
            )
        if not is_member(body.issuer):
            raise StrategyRefused(NOT_MEMBER, f"issuer {body.issuer.hex()} is not an active member")
        key = key_of(report)
        if key in self._reports:
            raise StrategyRefused(KNOWN, "this commitment was revealed already")
        commit = self._commits.get(key)
        if commit is None:
            raise StrategyRefused(
                NO_COMMITMENT, "no held commitment of the issuer matches the report and salt"
            )
        rnb = commit.body.reveal_not_before_ms
        if report.revealed_ms < rnb or now_ms + r.max_skew_ms < rnb:
            raise StrategyRefused(EARLY, f"revealed before its reveal time {rnb} ms")
        if report.revealed_ms > now_ms + r.max_skew_ms:
            raise StrategyRefused(BAD_REPORT, "revealed in the future")
        if not body.window_start_ms < body.window_end_ms:
            raise StrategyRefused(BAD_REPORT, "the window is empty or reversed")
        if body.window_end_ms - body.window_start_ms > r.max_window_ms:
            raise StrategyRefused(BAD_REPORT, f"the window is longer than {r.max_window_ms} ms")
        if body.window_end_ms > commit.body.issued_ms + r.max_skew_ms:
            raise StrategyRefused(BAD_REPORT, "the window ends after the commitment was made")
        if now_ms >= report.revealed_ms + r.report_ttl_ms:
            raise StrategyRefused(EXPIRED, "the report is too old")
        if len(self._reports) >= r.max_reports:
            raise StrategyRefused(FULL, f"the book holds {r.max_reports} reports")
        return commit

    def add_report(self, report: StrategyReport, now_ms: int, is_member: KeyCheck) -> bytes:
        """Accept ``report`` (raises StrategyRefused); return its digest."""
        self.check_report(report, now_ms, is_member)
        self._reports[key_of(report)] = report
        return report_digest(report)

    def prune(self, now_ms: int) -> tuple[list[StrategyCommit], list[StrategyReport]]:
        """Drop unrevealed commitments past their reveal grace and expired reports (with their
        commitments); return what was dropped."""
        r = self.rules
        gone_reports = [
            rep for rep in self._reports.values() if now_ms >= rep.revealed_ms + r.report_ttl_ms
        ]
        for rep in gone_reports:
            key = key_of(rep)
            del self._reports[key]
        gone_commits = [
            c
            for key, c in self._commits.items()
            if key not in self._reports
            and now_ms >= c.body.reveal_not_before_ms + r.reveal_grace_ms
        ]
        for c in gone_commits:
            del self._commits[c.body.issuer, c.body.commitment]
        return gone_commits, gone_reports

    def load(self, commits: Iterable[StrategyCommit], reports: Iterable[StrategyReport]) -> None:
        """Restore from storage (records were checked when first accepted)."""
        for c in commits:
            self._commits[c.body.issuer, c.body.commitment] = c
        for rep in reports:
            self._reports[key_of(rep)] = rep
