"""Commitments, signatures and digests of strategy records.

* commitment = SHA-256(``"hive/v1/strategy-commitment"`` || salt || canonical CBOR of the
  report body): binds every field of the report and the salt, and the 32 random bytes of salt
  keep the report (a peer among a few thousand, round numbers) from being guessed from the
  commitment before the reveal;
* a commit is signed over ``"hive/v1/strategy-commit"`` || canonical CBOR of its body;
* a report over ``"hive/v1/strategy-report"`` || salt || revealed_ms (u64, big-endian) ||
  canonical CBOR of its body.
"""

from __future__ import annotations

import hashlib

import nacl.signing

from hive.protocol.membership.pki import canonical_bytes
from hive.protocol.signed import record_digest, sign_text, signed_by
from hive.protocol.strategy.records import CommitBody, ReportBody, StrategyCommit, StrategyReport

COMMITMENT_DOMAIN = b"hive/v1/strategy-commitment"
COMMIT_DOMAIN = b"hive/v1/strategy-commit"
REPORT_DOMAIN = b"hive/v1/strategy-report"


def commitment_of(body: ReportBody, salt: bytes) -> bytes:
    return hashlib.sha256(COMMITMENT_DOMAIN + salt + canonical_bytes(body)).digest()


def _report_text(body: ReportBody, salt: bytes, revealed_ms: int) -> bytes:
    return REPORT_DOMAIN + salt + revealed_ms.to_bytes(8, "big") + canonical_bytes(body)


def sign_commit(key: nacl.signing.SigningKey, body: CommitBody) -> StrategyCommit:
    signature = sign_text(key, body.issuer, COMMIT_DOMAIN + canonical_bytes(body))
    return StrategyCommit(body=body, signature=signature)


def sign_report(
    key: nacl.signing.SigningKey, body: ReportBody, salt: bytes, revealed_ms: int
) -> StrategyReport:
    signature = sign_text(key, body.issuer, _report_text(body, salt, revealed_ms))
    return StrategyReport(body=body, salt=salt, revealed_ms=revealed_ms, signature=signature)


def commit_signed(commit: StrategyCommit) -> bool:
    body = commit.body
    return signed_by(body.issuer, COMMIT_DOMAIN + canonical_bytes(body), commit.signature)


def report_signed(report: StrategyReport) -> bool:
    text = _report_text(report.body, report.salt, report.revealed_ms)
    return signed_by(report.body.issuer, text, report.signature)


def commit_digest(commit: StrategyCommit) -> bytes:
    return record_digest(commit)


def report_digest(report: StrategyReport) -> bytes:
    return record_digest(report)
