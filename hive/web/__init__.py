"""Observers: the live fleet view, the JSON API, websocket feeds and ``/metrics`` (see
``docs/FEEDS.md``). ``feeds`` holds the message shapes (pure); ``server`` is the actor."""
