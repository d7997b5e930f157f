"""The Core Lightning front: the node port over lightningd's JSON-RPC, and the plugin process.

* :mod:`hive.cln.views` parses RPC answers (in one place) into the port's typed views;
* :mod:`hive.cln.events` turns hook calls and notifications into the port's events;
* :mod:`hive.cln.gateway` runs blocking pyln-client calls in worker threads, with timeouts;
* :mod:`hive.cln.node` is :class:`~hive.cln.node.ClnNode`, the node port for CLN;
* :mod:`hive.cln.bridge` joins pyln-client's blocking plugin loop to trio;
* :mod:`hive.cln.plugin` is the plugin process lightningd starts (``python -m hive.cln``).
"""
