"""Strategy gossip (issue 12, the learning engine): commitment and delayed reveal of what a
member found to earn well, the pure book that checks them, and the pure verdict on a report."""

from hive.protocol.strategy.book import StrategyBook, StrategyRefused, StrategyRules, key_of
from hive.protocol.strategy.records import (
    CommitBody,
    InboundShare,
    ReportBody,
    ReportedChannel,
    StrategyCommit,
    StrategyCommitAnnounce,
    StrategyDigest,
    StrategyReport,
    StrategyReportAnnounce,
    StrategySync,
)
from hive.protocol.strategy.sign import (
    commit_digest,
    commitment_of,
    report_digest,
    sign_commit,
    sign_report,
)

__all__ = [
    "CommitBody",
    "InboundShare",
    "ReportBody",
    "ReportedChannel",
    "StrategyBook",
    "StrategyCommit",
    "StrategyCommitAnnounce",
    "StrategyDigest",
    "StrategyRefused",
    "StrategyReport",
    "StrategyReportAnnounce",
    "StrategyRules",
    "StrategySync",
    "commit_digest",
    "commitment_of",
    "key_of",
    "report_digest",
    "sign_commit",
    "sign_report",
]
