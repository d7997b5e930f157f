"""State gossip actors: publishing and relaying state records (`publisher.py`) and the fleet state
map with saturation (`fleetstate.py`)."""
