"""Signed bans (issue 12): the Ban/Unban records, their signatures and the pure ban book."""

from hive.protocol.bans.book import BanBook, BanRefused, BanRules
from hive.protocol.bans.records import (
    Ban,
    BanAnnounce,
    BanBody,
    BanDigest,
    BanSync,
    Unban,
    UnbanAnnounce,
    UnbanBody,
)
from hive.protocol.bans.sign import ban_digest, evidence_digest, sign_ban, sign_unban

__all__ = [
    "Ban",
    "BanAnnounce",
    "BanBody",
    "BanBook",
    "BanDigest",
    "BanRefused",
    "BanRules",
    "BanSync",
    "Unban",
    "UnbanAnnounce",
    "UnbanBody",
    "ban_digest",
    "evidence_digest",
    "sign_ban",
    "sign_unban",
]
