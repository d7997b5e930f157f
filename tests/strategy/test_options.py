"""The strategy options as lightningd passes them in init: defaults, bounds, `never`."""

from __future__ import annotations

import pytest

from hive.commands.strategy import strategy_from_options
from hive.governance.options import DecisionOptionError


def test_defaults_and_values() -> None:
    default = strategy_from_options({})
    assert (default.delay_s, default.leech_delay_s, default.check_s) == (86_400.0, 86_400.0, 3600.0)
    set_ = strategy_from_options(
        {"hive-strategy-delay": "2h", "hive-strategy-leech-delay": "never",
         "hive-strategy-check": "90m"}
    )  # fmt: skip
    assert (set_.delay_s, set_.leech_delay_s, set_.check_s) == (7200.0, None, 5400.0)
    assert strategy_from_options({"hive-strategy-leech-delay": "0"}).leech_delay_s == 0.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("hive-strategy-delay", "5"),
        ("hive-strategy-delay", "31d"),
        ("hive-strategy-delay", "soon"),
        ("hive-strategy-leech-delay", "-1"),
        ("hive-strategy-check", "2d"),
    ],
)
def test_out_of_bounds_is_refused_naming_the_option(name: str, value: str) -> None:
    with pytest.raises(DecisionOptionError, match=name):
        strategy_from_options({name: value})
