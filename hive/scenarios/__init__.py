"""The value study (`hive sim`): does a coordinated fleet reach the routing position of one large
node? Scenarios on one graph, one demand, one capital, the same seeds; see docs/VALUE.md.

* :mod:`hive.scenarios.graphfile`: reads a user's graph (LND ``describegraph`` or Core Lightning
  ``listchannels`` JSON, plain or gzipped), detected from its content;
* :mod:`hive.scenarios.demand`: the pure, seeded demand model (who pays whom, how much, when);
* :mod:`hive.scenarios.flow`: balances, routing by the senders, HTLC failures, the ledger;
* :mod:`hive.scenarios.placement`: which channels each scenario's nodes open (the real planner
  for the fleet and the whale, a CLBOSS-like autopilot for the uncoordinated nodes);
* :mod:`hive.scenarios.compare`: the driver (scenarios x seeds, rebalancing with the real rules);
* :mod:`hive.scenarios.report`: figures with confidence intervals, JSON, CSV, Markdown, PNG.
"""
