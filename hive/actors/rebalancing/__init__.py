"""Zero-fee member channels (`feepolicy.py`) and predictive rebalancing through the fleet
(`rebalancer.py`)."""
