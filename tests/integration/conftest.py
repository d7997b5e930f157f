"""Settings the real-node tests need before pyln-testing is imported.

pyln-testing gives every node a ``--grpc-port`` unless ``RUST=0``: a lightningd built without
cln-grpc (``./configure --disable-rust``, or a distribution package without Rust) then exits with
"--grpc-port=...: unknown option" and every test fails. The hive never uses gRPC, so RUST is 0
unless the environment says otherwise.
"""

from __future__ import annotations

import os

os.environ.setdefault("RUST", "0")
