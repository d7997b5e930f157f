"""Money over the channel graph: conserved, moved only by HTLCs that had the liquidity."""

from __future__ import annotations

import numpy as np

from hive.node.sim.graph import generate_graph
from hive.scenarios.demand import DemandConfig, generate
from hive.scenarios.flow import Flow


def _line() -> Flow:
    # 0 -- 1 -- 2, each channel 1,000,000 sat; 0 holds 600k on its side, 1 holds 100k toward 2.
    return Flow(
        3,
        node1=[0, 1],
        node2=[1, 2],
        capacity_sat=[1_000_000, 1_000_000],
        bal1_msat=[600_000_000, 100_000_000],
        base_msat=[1000, 1000, 1000, 1000],
        ppm=[100, 100, 100, 100],
        routable=[True, True, True, True],
    )


def test_a_payment_moves_amount_and_fee_and_the_forwarder_earns() -> None:
    flow = _line()
    done = flow.pay(0, 2, 50_000_000)
    assert done.ok
    assert done.edges == (0, 2)
    fee = 1000 + 50_000_000 * 100 // 1_000_000
    assert done.fee_msat == fee
    assert flow.bal1.tolist() == [600_000_000 - 50_000_000 - fee, 50_000_000]
    assert flow.earned.tolist() == [0, fee, 0]
    assert flow.received[2] == 50_000_000
    assert flow.paid[0] == 50_000_000 + fee


def test_lack_of_liquidity_fails_at_the_forwarder_and_moves_nothing() -> None:
    flow = _line()
    before = flow.bal1.copy()
    done = flow.pay(0, 2, 200_000_000)  # node 1 holds only 100k toward 2
    assert not done.ok
    assert done.failed_at == 2
    assert flow.no_liquidity.tolist() == [0, 1, 0]
    assert np.array_equal(flow.bal1, before)
    assert flow.earned.sum() == flow.paid.sum() == flow.received.sum() == 0


def test_money_is_conserved_over_many_payments() -> None:
    graph = generate_graph(80, seed=5)
    flow = Flow.from_graph(graph)
    total = int(flow.cap_msat.sum())
    start = flow.holdings()
    degree = np.bincount(flow.node1, minlength=flow.n) + np.bincount(flow.node2, minlength=flow.n)
    payments = generate(degree, flow.holdings() // 1000, DemandConfig(payments=400), seed=2)
    ok = 0
    for k in range(len(payments)):
        done = flow.pay(
            int(payments.sender[k]), int(payments.receiver[k]), int(payments.amount_msat[k])
        )
        ok += done.ok
    assert 0 < ok < len(payments) or ok == len(payments)
    assert ok > 300
    held = flow.holdings()
    assert int(held.sum()) == total  # nothing created or lost in the channels
    assert np.all(flow.bal1 >= 0)
    assert np.all(flow.bal1 <= flow.cap_msat)
    # every node's change is exactly its ledger: received - paid + fees earned
    assert np.array_equal(held - start, flow.received - flow.paid + flow.earned)
    assert flow.earned.sum() == flow.fees_paid.sum()
