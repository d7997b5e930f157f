"""The fleet as one picture, pure logic (no I/O, time as an argument): the state map of every
member's latest record (:mod:`hive.fleet.statemap`), claims clamped to the public graph
(:mod:`hive.fleet.clamp`), the derived fleet view (:mod:`hive.fleet.view`) and saturation with
hysteresis (:mod:`hive.fleet.saturation`)."""
