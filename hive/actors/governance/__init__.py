"""The decision engine actor and what plugs into it: executors, deciders (HTTP oracle, agents),
webhooks and the event hub."""
