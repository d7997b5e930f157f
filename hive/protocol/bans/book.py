"""The ban book: which bans hold, pure (no I/O, no clock: ``now_ms`` is always passed in).

Acceptance rules for a :class:`~hive.protocol.bans.records.Ban` (each refusal has a code):

* ``other-hive``: not for our hive; ``bad-signature``: the issuer's signature does not verify;
* ``not-member``: the issuer is not an active member (the caller's ``is_member``);
* ``bad-ban``: expiry not after issue, a non-permanent ban longer than ``max_ttl_ms``, or a
  ban issued more than ``max_skew_ms`` in the future;
* ``expired``: already past its effective expiry; ``known``: already in the book (not an
  error: the flood stops there); ``lifted``: an unban for it is in the book;
* ``rate-limited``: the issuer already has ``max_per_window`` bans issued within
  ``window_ms`` before this one's ``issued_ms``.

Permanence: a ban with ``permanent`` set expires at its ``expires_ms`` like any other unless at
least ``permanent_quorum`` distinct members hold live bans on the same peer; then it holds
until lifted. So one member alone can never ban for good.

An :class:`~hive.protocol.bans.records.Unban` lifts one ban when signed by the ban's issuer or
an admin; a tombstone keeps the ban from being re-learnt by repair until the ban would have
expired anyway. Local overrides (the operator's ``hive-unban --local``) are kept here too: an
overridden peer is never banned on this node, whatever the fleet says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from hive.protocol.bans.records import Ban, Unban
from hive.protocol.bans.sign import ban_digest, ban_signed, unban_digest, unban_signed
from hive.protocol.signed import set_digest

OTHER_HIVE = "other-hive"
BAD_SIGNATURE = "bad-signature"
NOT_MEMBER = "not-member"
NOT_ALLOWED = "not-allowed"
BAD_BAN = "bad-ban"
EXPIRED = "expired"
KNOWN = "known"
LIFTED = "lifted"
RATE_LIMITED = "rate-limited"
UNKNOWN_BAN = "unknown-ban"
FULL = "full"

DAY_MS = 86_400_000


@attrs.frozen
class BanRules:
    default_ttl_ms: int = 7 * DAY_MS
    max_ttl_ms: int = 30 * DAY_MS
    max_per_window: int = 5
    window_ms: int = DAY_MS
    permanent_quorum: int = 3
    max_skew_ms: int = 600_000
    max_bans: int = 4096


class BanRefused(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


KeyCheck = Callable[[bytes], bool]


class BanBook:
    def __init__(self, hive_id: bytes, rules: BanRules | None = None) -> None:
        self.hive_id = hive_id
        self.rules = rules or BanRules()
        self._bans: dict[bytes, Ban] = {}
        self._unbans: dict[bytes, Unban] = {}  # by the lifted ban's digest (tombstones)
        self._lifted_until: dict[bytes, int] = {}
        self.overrides: set[bytes] = set()  # peers this node never bans (local override)

    # --- reading -------------------------------------------------------------------------------

    def bans(self) -> list[Ban]:
        return sorted(self._bans.values(), key=lambda b: (b.body.issued_ms, ban_digest(b)))

    def unbans(self) -> list[Unban]:
        return sorted(self._unbans.values(), key=lambda u: (u.body.at_ms, unban_digest(u)))

    def get(self, digest: bytes) -> Ban | None:
        return self._bans.get(digest)

    def issuers_of(self, peer: bytes) -> set[bytes]:
        return {b.body.issuer for b in self._bans.values() if b.body.peer == peer}

    def expires_of(self, ban: Ban) -> int | None:
        """The effective expiry in ms, or None when the ban holds until lifted."""
        body = ban.body
        if body.permanent and len(self.issuers_of(body.peer)) >= self.rules.permanent_quorum:
            return None
        return body.expires_ms

    def live(self, ban: Ban, now_ms: int) -> bool:
        expires = self.expires_of(ban)
        return expires is None or now_ms < expires

    def banned_peers(self, now_ms: int) -> frozenset[bytes]:
        """Peers banned on this node now (local overrides removed)."""
        return frozenset(
            b.body.peer
            for b in self._bans.values()
            if self.live(b, now_ms) and b.body.peer not in self.overrides
        )

    def is_banned(self, peer: bytes, now_ms: int) -> bool:
        return peer in self.banned_peers(now_ms)

    def digest(self) -> bytes:
        """SHA-256 over the sorted digests of held bans, then of held unbans."""
        return set_digest(
            b"hive/v1/ban-book", self._bans, (unban_digest(u) for u in self._unbans.values())
        )

    # --- changing ------------------------------------------------------------------------------

    def check(self, ban: Ban, now_ms: int, is_member: KeyCheck) -> bytes:
        """Raise BanRefused unless ``ban`` may enter the book; return its digest."""
        body = ban.body
        rules = self.rules
        digest = ban_digest(ban)
        if digest in self._bans:
            raise BanRefused(KNOWN, "ban already held")
        if digest in self._lifted_until:
            raise BanRefused(LIFTED, "ban was lifted")
        if body.hive_id != self.hive_id:
            raise BanRefused(OTHER_HIVE, f"ban is for hive {body.hive_id.hex()}")
        if not ban_signed(ban):
            raise BanRefused(BAD_SIGNATURE, f"signature does not verify for {body.issuer.hex()}")
        if not is_member(body.issuer):
            raise BanRefused(NOT_MEMBER, f"issuer {body.issuer.hex()} is not an active member")
        if body.expires_ms <= body.issued_ms:
            raise BanRefused(BAD_BAN, "ban expires before it is issued")
        if not body.permanent and body.expires_ms - body.issued_ms > rules.max_ttl_ms:
            raise BanRefused(BAD_BAN, f"ban lasts longer than {rules.max_ttl_ms} ms")
        if body.issued_ms > now_ms + rules.max_skew_ms:
            raise BanRefused(BAD_BAN, "ban is issued in the future")
        if now_ms >= body.expires_ms and not body.permanent:
            raise BanRefused(EXPIRED, f"ban expired at {body.expires_ms} ms")
        recent = sum(
            1
            for b in self._bans.values()
            if b.body.issuer == body.issuer
            and body.issued_ms - rules.window_ms < b.body.issued_ms <= body.issued_ms
        )
        if recent >= rules.max_per_window:
            raise BanRefused(
                RATE_LIMITED,
                f"issuer has {recent} bans within {rules.window_ms} ms (at most "
                f"{rules.max_per_window})",
            )
        if len(self._bans) >= rules.max_bans:
            raise BanRefused(FULL, f"the book holds {rules.max_bans} bans")
        return digest

    def add(self, ban: Ban, now_ms: int, is_member: KeyCheck) -> bytes:
        """Accept ``ban`` (raises BanRefused); return its digest."""
        digest = self.check(ban, now_ms, is_member)
        if now_ms >= ban.body.expires_ms and not self.live_with(ban, now_ms):
            raise BanRefused(EXPIRED, f"ban expired at {ban.body.expires_ms} ms")
        self._bans[digest] = ban
        return digest

    def live_with(self, ban: Ban, now_ms: int) -> bool:
        """Whether ``ban`` would be live once added (a permanent ban completing a quorum)."""
        body = ban.body
        issuers = self.issuers_of(body.peer) | {body.issuer}
        if body.permanent and len(issuers) >= self.rules.permanent_quorum:
            return True
        return now_ms < body.expires_ms

    def lift(self, unban: Unban, is_admin: KeyCheck) -> Ban:
        """Apply ``unban`` (raises BanRefused); return the ban it lifted."""
        body = unban.body
        if body.hive_id != self.hive_id:
            raise BanRefused(OTHER_HIVE, f"unban is for hive {body.hive_id.hex()}")
        ban = self._bans.get(body.ban_digest)
        if ban is None:
            if body.ban_digest in self._lifted_until:
                raise BanRefused(KNOWN, "ban already lifted")
            raise BanRefused(UNKNOWN_BAN, f"no ban {body.ban_digest.hex()}")
        if not unban_signed(unban):
            raise BanRefused(BAD_SIGNATURE, f"signature does not verify for {body.by_key.hex()}")
        if body.by_key != ban.body.issuer and not is_admin(body.by_key):
            raise BanRefused(NOT_ALLOWED, "only the ban's issuer or an admin may lift it")
        del self._bans[body.ban_digest]
        self._unbans[body.ban_digest] = unban
        # Keep the tombstone as long as the ban could otherwise come back through repair.
        self._lifted_until[body.ban_digest] = ban.body.expires_ms
        return ban

    def prune(self, now_ms: int) -> list[Ban]:
        """Drop expired bans and tombstones; return the bans dropped."""
        gone = [b for b in self._bans.values() if not self.live(b, now_ms)]
        for ban in gone:
            del self._bans[ban_digest(ban)]
        for digest, until in list(self._lifted_until.items()):
            if now_ms >= until:
                del self._lifted_until[digest]
                self._unbans.pop(digest, None)
        return gone

    def load(self, bans: Iterable[Ban], unbans: Iterable[Unban]) -> None:
        """Restore from storage (records were verified when first accepted)."""
        for ban in bans:
            self._bans[ban_digest(ban)] = ban
        for unban in unbans:
            digest = unban.body.ban_digest
            lifted = self._bans.pop(digest, None)
            self._unbans[digest] = unban
            self._lifted_until[digest] = lifted.body.expires_ms if lifted else unban.body.at_ms
