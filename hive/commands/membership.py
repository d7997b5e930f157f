"""Operator commands for membership: genesis, invite, join, members, leave, revoke.

Handlers take the command's parameters as decoded JSON (lightning-cli passes ``-k`` values as
JSON literals when they parse, else as strings, so both ``true`` and ``"true"`` are accepted;
names may be spelled with ``-`` or ``_``) and return JSON-able dicts. Refusals are
:class:`~hive.commands.CommandError` with a message an operator can act on.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from hive.actors.membership.liveness import Liveness
from hive.actors.membership.roster import Membership
from hive.commands import CommandError, JsonDict
from hive.errors import HiveError
from hive.protocol.errors import ProtocolError
from hive.protocol.membership import (
    EXIT_LEAVE,
    EXIT_REVOKE,
    ROLE_ADMIN,
    Certificate,
    ExitBody,
    ExitRecord,
    Genesis,
    MemberBody,
    MemberRecord,
    MemberStatus,
    Roster,
    TicketBody,
    cert_text,
    encode_ticket,
    genesis_text,
    sign_exit,
    sign_member,
    sign_ticket,
    verify_genesis,
    version_key,
)

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
MAX_VALID_HOURS = 24 * 365
MAX_USES = 1000
LEAVE_WAIT_S = 30.0  # how long hive-leave waits for a member to acknowledge the leave

_INTEGER = re.compile(r"-?[0-9]{1,19}", re.ASCII)
_NODE_ID = re.compile(r"0[23][0-9a-f]{64}", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
# A DNS name, an IPv4 address or an IPv6 address (brackets removed): ASCII, no spaces.
_HOST = re.compile(r"[A-Za-z0-9._:%-]{1,253}", re.ASCII)


class Params:
    """Typed access to a command's parameters, refusing unknown ones."""

    def __init__(self, command: str, raw: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        self.command = command
        self.values = {key.replace("-", "_"): value for key, value in raw.items()}
        unknown = sorted(set(self.values) - set(allowed))
        if unknown:
            raise CommandError(
                CommandError.INVALID_PARAMS,
                f"{command}: unknown parameter(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(allowed) or 'none'}",
            )

    def text(self, name: str, default: str | None = None, *, max_len: int = 200) -> str | None:
        """A string of at most ``max_len`` UTF-8 bytes (what the protocol's fields bound),
        without control characters and encodable as UTF-8 (no lone surrogates)."""
        value = self.values.get(name)
        if value is None:
            return default
        want = f"a string of at most {max_len} bytes"
        if not isinstance(value, str) or len(value) > max_len:
            raise self._bad(name, want, value)
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise self._bad(name, "valid Unicode text (it holds a lone surrogate)", value) from exc
        if len(encoded) > max_len:
            raise self._bad(name, f"{want} ({len(encoded)} in UTF-8)", value)
        if any(unicodedata.category(c) == "Cc" and not c.isspace() for c in value):
            raise self._bad(name, "text without control characters", value)
        return value

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        value = self.values.get(name, default)
        want = f"a whole number from {low} to {high}"
        if isinstance(value, str):
            # ASCII digits only, and few of them: str.isdigit() passes "²", which int()
            # refuses, and int() refuses numbers of more than 4300 digits.
            if _INTEGER.fullmatch(value.strip()) is None:
                raise self._bad(name, want, value)
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._bad(name, want, value)
        return value

    def flag(self, name: str) -> bool:
        value = self.values.get(name, False)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self._bad(name, "true or false", value)
        return value

    def node_id(self, name: str, *, required: bool) -> str | None:
        value = self.text(name, max_len=66)
        if value is None:
            if required:
                raise CommandError(CommandError.INVALID_PARAMS, f"{self.command}: {name} is needed")
            return None
        return parse_node_id(value, f"{self.command}: {name}")

    def _bad(self, name: str, want: str, value: object) -> CommandError:
        return CommandError(
            CommandError.INVALID_PARAMS,
            f"{self.command}: {name} must be {want}, got {_shown(value)}",
        )


def _shown(value: object) -> str:
    """A parameter as an error message may quote it: short, and ASCII (no lone surrogates)."""
    text = ascii(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def parse_node_id(text: str, what: str) -> str:
    value = text.strip().lower()
    if _NODE_ID.fullmatch(value) is None:
        raise CommandError(
            CommandError.INVALID_PARAMS,
            f"{what}: {_shown(text)} is not a node id (66 hex characters, starting 02 or 03)",
        )
    return value


def parse_member_address(text: str) -> tuple[str, str | None, int | None]:
    """``ID``, ``ID@HOST`` or ``ID@HOST:PORT`` (HOST a name, an IPv4 address or a bracketed
    IPv6 address; PORT 1..65535)."""
    node, _, address = text.partition("@")
    node_id = parse_node_id(node, "hive-join: member")
    if not address:
        return node_id, None, None
    host, port_text = address, None
    if address.startswith("["):  # [IPv6] or [IPv6]:PORT
        host, _, rest = address[1:].partition("]")
        if rest:
            port_text = rest[1:] if rest.startswith(":") else rest
    else:
        before, sep, after = address.rpartition(":")
        if sep:
            host, port_text = before, after
    port = None
    if port_text is not None:
        if _PORT.fullmatch(port_text) is None or not 0 < int(port_text) < 65536:
            raise CommandError(
                CommandError.INVALID_PARAMS,
                f"hive-join: {_shown(port_text)} is not a port number (1 to 65535)",
            )
        port = int(port_text)
    if _HOST.fullmatch(host) is None:
        raise CommandError(
            CommandError.INVALID_PARAMS,
            f"hive-join: {_shown(host)} is not a host name or address",
        )
    return node_id, host, port


class MembershipCommands:
    """The handlers; bound to one companion's membership and liveness actors."""

    def __init__(self, membership: Membership, liveness: Liveness) -> None:
        self.m = membership
        self.liveness = liveness

    async def genesis(self, raw: Mapping[str, Any]) -> JsonDict:
        params = Params("hive-genesis", raw, ("name",))
        name = params.text("name", "hive", max_len=64) or "hive"
        m = self.m
        if m.roster is not None and m.is_member:
            raise CommandError(
                CommandError.REFUSED,
                f"already a member of hive {m.roster.hive_id.hex()}; hive-leave first",
            )
        created = m.now_ms()
        try:
            node_sig = await m.node.sign_message(genesis_text(m.node_id, m.hive_key, created, name))
            genesis = Genesis(
                name=name,
                node_id=m.node_id,
                hive_key=m.hive_key,
                created_ms=created,
                node_sig=node_sig,
            )
            hive_id = verify_genesis(genesis)
            cert_sig = await m.node.sign_message(cert_text(hive_id, m.node_id, m.hive_key))
        except (HiveError, ProtocolError) as exc:
            raise CommandError(CommandError.NODE_ERROR, f"hive-genesis: {exc}") from exc
        cert = Certificate(
            hive_id=hive_id, node_id=m.node_id, hive_key=m.hive_key, node_sig=cert_sig
        )
        founder = sign_member(
            m.signing_key,
            MemberBody(
                hive_id=hive_id,
                cert=cert,
                role=ROLE_ADMIN,
                admitted_by=m.hive_key,
                admitted_ms=created,
                grant=None,
            ),
        )
        roster = Roster(genesis)
        roster.apply(founder)
        await m.adopt(roster, forget_tickets=True)
        log.info("created hive %s (%s)", hive_id.hex(), name)
        return {"hive_id": hive_id.hex(), "name": name, "founder": m.info.node_id, "role": "admin"}

    async def invite(self, raw: Mapping[str, Any]) -> JsonDict:
        params = Params(
            "hive-invite", raw, ("valid_hours", "req_splice", "min_version", "max_uses", "for_node")
        )
        hours = params.integer("valid_hours", 24, low=1, high=MAX_VALID_HOURS)
        max_uses = params.integer("max_uses", 1, low=1, high=MAX_USES)
        req_splice = params.flag("req_splice")
        min_version = params.text("min_version", "", max_len=32) or ""
        if min_version:
            try:
                version_key(min_version)
            except ValueError as exc:
                raise CommandError(
                    CommandError.INVALID_PARAMS,
                    f"hive-invite: min_version must be a version such as v25.09, "
                    f"got {_shown(min_version)}",
                ) from exc
        for_node = params.node_id("for_node", required=False)
        roster = self._roster("hive-invite")
        if not roster.is_admin(self.m.node_id):
            raise CommandError(CommandError.REFUSED, "hive-invite: only admins issue tickets")
        m = self.m
        now = m.now_ms()
        body = TicketBody(
            hive_id=roster.hive_id,
            ticket_id=m.rng.randbytes(16),
            issuer_key=m.hive_key,
            issuer_node=m.node_id,
            issued_ms=now,
            expires_ms=now + hours * HOUR_MS,
            max_uses=max_uses,
            req_splice=req_splice,
            min_version=min_version,
            for_node=bytes.fromhex(for_node) if for_node else None,
        )
        ticket = sign_ticket(m.signing_key, body)
        text = encode_ticket(ticket)
        await m.store.add_ticket(body.ticket_id, text.encode(), now, body.expires_ms, max_uses)
        return {
            "ticket": text,
            "ticket_id": body.ticket_id.hex(),
            "hive_id": roster.hive_id.hex(),
            "expires_at_ms": body.expires_ms,
            "max_uses": max_uses,
            "requires": {
                "splicing": req_splice,
                "min_version": min_version or None,
                "for_node": for_node,
            },
        }

    async def join(self, raw: Mapping[str, Any]) -> JsonDict:
        params = Params("hive-join", raw, ("ticket", "member"))
        ticket = params.text("ticket", max_len=4000)
        if not ticket:
            raise CommandError(CommandError.INVALID_PARAMS, "hive-join: a ticket is needed")
        member_text = params.text("member", max_len=400)
        member, host, port = (None, None, None)
        if member_text:
            member, host, port = parse_member_address(member_text)
        result = await self.m.join(ticket, member, host, port)
        return {"hive_id": result.hive_id, "joined_via": result.via, "members": result.members}

    async def members(self, raw: Mapping[str, Any]) -> JsonDict:
        Params("hive-members", raw, ())
        roster = self._roster("hive-members")
        now = self.m.now_ms()
        rows = []
        for record in roster.records():
            if not isinstance(record, MemberRecord):
                continue
            node_id = record.body.cert.node_id
            status = roster.status(node_id)
            if roster.active().get(node_id) not in (None, record):
                continue  # an older record of a node that came back
            live = self.liveness.peers.get(node_id.hex())
            seen = None if live is None or live.last_seen_ms is None else live.last_seen_ms
            rows.append(
                {
                    "node_id": node_id.hex(),
                    "hive_key": record.body.cert.hive_key.hex(),
                    "role": "admin" if record.body.role == ROLE_ADMIN else "member",
                    "status": status.value,
                    "since_ms": record.body.admitted_ms,
                    "admitted_by": record.body.admitted_by.hex(),
                    "self": node_id == self.m.node_id,
                    "last_seen_s_ago": None if seen is None else (now - seen) / 1000,
                    "rtt_ms": None if live is None else live.rtt_ms,
                }
            )
        return {"hive_id": roster.hive_id.hex(), "members": rows}

    async def leave(self, raw: Mapping[str, Any]) -> JsonDict:
        """Sign and announce our leave. The leave is kept (and announced again, also after a
        restart) until a member acknowledges it; with ``delete_data`` the hive's local data is
        deleted only then. The command waits up to ``LEAVE_WAIT_S`` for that acknowledgement.
        """
        params = Params("hive-leave", raw, ("delete_data",))
        delete = params.flag("delete_data")
        roster = self._roster("hive-leave")
        m = self.m
        if not m.is_member:
            raise CommandError(CommandError.REFUSED, "hive-leave: this node is not a member")
        exit_record = self._exit(roster, m.node_id, EXIT_LEAVE, "left by the operator")
        alone = not m.fleet_peers()
        acknowledged = await m.leave(
            exit_record, delete=delete, wait_s=0 if alone else LEAVE_WAIT_S
        )
        hive_id = roster.hive_id.hex()
        deleted = delete and m.roster is None
        log.info(
            "left hive %s (%s; local data %s)",
            hive_id,
            "acknowledged" if acknowledged else "no member acknowledged it yet",
            "deleted" if deleted else "kept",
        )
        return {
            "hive_id": hive_id,
            "left": True,
            "acknowledged": acknowledged,
            "data_deleted": deleted,
            "delete_pending": delete and not deleted,
        }

    async def revoke(self, raw: Mapping[str, Any]) -> JsonDict:
        params = Params("hive-revoke", raw, ("node", "reason"))
        target = params.node_id("node", required=True)
        assert target is not None
        reason = params.text("reason", "revoked by an admin", max_len=200) or ""
        roster = self._roster("hive-revoke")
        m = self.m
        if not roster.is_admin(m.node_id):
            raise CommandError(CommandError.REFUSED, "hive-revoke: only admins revoke")
        subject = bytes.fromhex(target)
        if subject == m.node_id:
            raise CommandError(CommandError.REFUSED, "hive-revoke: use hive-leave to leave")
        status = roster.status(subject)
        if status is not MemberStatus.ACTIVE:
            raise CommandError(
                CommandError.NOT_FOUND,
                f"hive-revoke: {target} is not an active member ({status.value})",
            )
        try:
            await m.add_own_record(self._exit(roster, subject, EXIT_REVOKE, reason))
        except ProtocolError as exc:
            raise CommandError(CommandError.REFUSED, f"hive-revoke: {exc}") from exc
        return {"hive_id": roster.hive_id.hex(), "revoked": target, "reason": reason}

    def _exit(self, roster: Roster, subject: bytes, kind: int, reason: str) -> ExitRecord:
        m = self.m
        # A revoke keeps in force what the revoked member did before, as we know it.
        kept = roster.authority_records(subject) if kind == EXIT_REVOKE else ()
        body = ExitBody(
            hive_id=roster.hive_id,
            node_id=subject,
            by_key=m.hive_key,
            at_ms=m.now_ms(),
            kind=kind,
            reason=reason,
            kept=kept,
        )
        return sign_exit(m.signing_key, body)

    def _roster(self, command: str) -> Roster:
        if self.m.roster is None:
            raise CommandError(
                CommandError.NOT_FOUND,
                f"{command}: this node is in no hive "
                "(hive-genesis creates one, hive-join joins one)",
            )
        return self.m.roster
