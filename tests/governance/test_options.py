"""The decision options as lightningd passes them to init: validated without I/O, each refusal
a one-line reason naming the option."""

from __future__ import annotations

import pytest

from hive.governance.limits import LIMIT_OPTIONS, Limits
from hive.governance.options import DecisionOptionError, decisions_from_options

SECRET = "0123456789abcdef"


def test_defaults() -> None:
    config = decisions_from_options({})
    assert config.proposal_ttl_s == 86_400
    assert config.oracle_url is None
    assert config.oracle_timeout_s == 30
    assert config.webhook_urls == ()
    assert config.limits == Limits()
    assert len(LIMIT_OPTIONS) == len(Limits().to_json())


def test_values_are_read() -> None:
    config = decisions_from_options(
        {
            "hive-proposal-ttl": "90m",
            "hive-oracle-url": "https://oracle.example/decide",
            "hive-oracle-timeout": "5",
            "hive-webhook-url": ["http://127.0.0.1:8080/a", "https://hooks.example/b"],
            "hive-webhook-secret": SECRET,
            "hive-limit-daily-capital-sat": "2_000_000",
            "hive-limit-action-capital-sat": "1000000",
            "hive-limit-min-confidence-pct": "80",
        }
    )
    assert config.proposal_ttl_s == 5_400
    assert config.oracle_url == "https://oracle.example/decide"
    assert config.oracle_timeout_s == 5
    assert config.webhook_urls == ("http://127.0.0.1:8080/a", "https://hooks.example/b")
    assert config.limits.daily_capital_sat == 2_000_000
    assert config.limits.min_confidence_pct == 80
    # lightningd passes a single value of a multi option as a one-element list; a bare string
    # (older callers) is accepted too.
    one = decisions_from_options({"hive-webhook-url": "http://h/x", "hive-webhook-secret": SECRET})
    assert one.webhook_urls == ("http://h/x",)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"hive-proposal-ttl": "forever"}, "hive-proposal-ttl must be seconds"),
        ({"hive-proposal-ttl": "10"}, "hive-proposal-ttl must be from 60 s"),
        ({"hive-oracle-timeout": "0"}, "hive-oracle-timeout must be from 1 s"),
        ({"hive-oracle-url": "ftp://x/y"}, "hive-oracle-url must be an http:// or https:// URL"),
        ({"hive-oracle-url": "http://user:pw@x/y"}, "put no credentials in the URL"),
        ({"hive-oracle-url": "https://x:99999/"}, "is not a URL"),
        ({"hive-webhook-url": ["not a url"], "hive-webhook-secret": SECRET}, "must not contain"),
        ({"hive-webhook-url": ["http://h/a"]}, "needs hive-webhook-secret"),
        (
            {"hive-webhook-url": ["http://h/a", "http://h/a"], "hive-webhook-secret": SECRET},
            "the same URL is given twice",
        ),
        (
            {
                "hive-webhook-url": [f"http://h/{i}" for i in range(9)],
                "hive-webhook-secret": SECRET,
            },
            "at most 8",
        ),
        ({"hive-webhook-secret": "short"}, "at least 16 characters"),
        ({"hive-limit-daily-capital-sat": "-1"}, "hive-limit-daily-capital-sat must be a whole"),
        ({"hive-limit-max-rebalance-ppm": "999999999"}, "from 0 to 100000"),
        ({"hive-limit-min-confidence-pct": "1.5"}, "hive-limit-min-confidence-pct must be"),
        ({"hive-limit-action-capital-sat": "20000000"}, "is above hive-limit-daily-capital-sat"),
        ({"hive-limit-actions-per-hour": "50"}, "is above hive-limit-actions-per-day"),
    ],
)
def test_refusals_name_the_option(options: dict[str, object], says: str) -> None:
    with pytest.raises(DecisionOptionError, match=None) as info:
        decisions_from_options(options)
    assert says in str(info.value)
    assert "\n" not in str(info.value)
