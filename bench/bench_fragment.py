"""Cost of one fragment against how many partial messages reassembly already holds.

Usage: .venv/bin/python bench/bench_fragment.py [--held 0,4000,16000] [--fragments 20000]

Fills a Reassembler (budgets lifted) with ``held`` partial messages from other peers (4 each,
one 2-byte fragment of a 64-fragment message), then times feeding one member's fragments into
its own 3 partial messages (CPU time, per fragment). Before issue 8 every fragment scanned every
partial held; now a feed looks at its own peer's partials only. Prints a line per figure.
"""

from __future__ import annotations

import argparse
import struct
import time

from hive.protocol.wire.fragment import Reassembler, ReassemblyLimits


def fragment(msg_id: int, index: int, count: int, chunk: bytes) -> bytes:
    return struct.pack(">2sBBQHH", b"HV", 1, 1, msg_id, index, count) + chunk


def per_fragment_us(held: int, fragments: int) -> float:
    reassembler = Reassembler(ReassemblyLimits(max_total_bytes=1 << 40, max_bytes_per_peer=1 << 30))
    for peer in range(held // 4):
        for msg_id in range(4):
            reassembler.feed(f"peer{peer}", fragment(msg_id, 0, 64, b"xy"), 0)
    start = time.process_time()
    for index in range(fragments):
        reassembler.feed("member", fragment(index % 3, index % 60, 64, b"ab"), 1)
    return (time.process_time() - start) / fragments * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--held", default="0,4000,16000", help="partial messages held, comma-separated"
    )
    parser.add_argument("--fragments", type=int, default=20_000)
    args = parser.parse_args()
    for held in (int(h) for h in args.held.split(",")):
        cost = per_fragment_us(held, args.fragments)
        print(f"{held:>7,} partials held: {cost:6.2f} us per fragment")


if __name__ == "__main__":
    main()
