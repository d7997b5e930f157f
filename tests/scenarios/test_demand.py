"""The demand model: the same seed gives the same payments; its shape is what the docs say."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from hive.scenarios.demand import DemandConfig, generate

DEGREE = np.array([0, 1, 2, 5, 40, 3, 3, 8, 1, 1])
CAPACITY = np.array([0, 1e6, 2e6, 5e6, 9e8, 3e6, 3e6, 2e7, 1e6, 1e6])


def test_same_seed_same_payments_and_another_seed_others() -> None:
    config = DemandConfig(payments=500)
    a = generate(DEGREE, CAPACITY, config, seed=3)
    b = generate(DEGREE, CAPACITY, config, seed=3)
    c = generate(DEGREE, CAPACITY, config, seed=4)
    for field in ("at_s", "sender", "receiver", "amount_msat"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.amount_msat, c.amount_msat)


def test_shape_of_the_demand() -> None:
    config = DemandConfig(payments=4000, merchant_share=0.5, merchants=0.1, max_sat=1_000_000)
    p = generate(DEGREE, CAPACITY, config, seed=1)
    assert len(p) == 4000
    assert np.all(np.diff(p.at_s) >= 0)
    assert p.at_s.max() <= config.period_s
    assert not np.any(p.sender == p.receiver)
    assert not np.any(p.sender == 0)
    assert not np.any(p.receiver == 0)
    assert p.amount_msat.min() >= config.min_sat * 1000
    assert p.amount_msat.max() <= config.max_sat * 1000
    # Heavy tail: the mean well above the median.
    assert p.amount_msat.mean() > 1.5 * np.median(p.amount_msat)
    # Half of the payments the merchant does not send itself go to it (10 % of the 9 active
    # nodes: the largest), plus its share of the others.
    others = p.sender != 4
    plain = generate(DEGREE, CAPACITY, attrs.evolve(config, merchant_share=0.0), seed=1)
    general = np.mean(plain.receiver[plain.sender != 4] == 4)
    assert abs(np.mean(p.receiver[others] == 4) - (0.5 + 0.5 * general)) < 0.05
    # Senders follow degree: node 4 (degree 40) sends the most.
    assert np.bincount(p.sender).argmax() == 4


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="merchant_share"):
        DemandConfig(merchant_share=1.5)
    with pytest.raises(ValueError, match="two nodes"):
        generate(np.array([0, 1]), np.array([0, 1]), DemandConfig(), seed=1)
