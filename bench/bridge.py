"""The bridge's conversion, measured: `.venv/bin/python -m bench.bridge [--items N]`.

One export data file (gzipped JSON lines of expense-shaped items, as AWS writes them) becomes
the Distributed Map reader's JSON array. Ours (engine/aws/export_reader.reader_array: streamed
from the gzip, line by line, the transform the bridge function runs) against a naive baseline
measured in the same run on the same bytes: gunzip the whole file, parse every line, join the
array (the rehearsal's old bridge). Both without S3 (its I/O is the same on both sides and not
the CPU's); medians of 3 interleaved runs, then each run once more under tracemalloc for its
peak. Printed: throughput (MB/s of uncompressed input) and peak Python memory, and their
ratios; the machine's noise cancels in the ratios, not in the MB/s. docs/step-functions.md
says how they bear on the estimate's assumed 30 MB/s.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from engine.aws.export_reader import reader_array

DATA_KEY = "x/AWSDynamoDB/0123/data/abcd.json.gz"
RUNS = 3


def expense(n: int) -> dict[str, Any]:
    """An item of the bundled plan's expenses, about 320 bytes of DynamoDB JSON."""
    return {
        "userId": {"S": f"user-{n % 997:04d}"},
        "expenseId": {"S": f"exp-{n:09d}"},
        "amount": {"N": str(1000 + n % 50_000)},
        "date": {"S": "2025-03-14"},
        "description": {"S": f"tiles and grout, delivery {n % 31}"},
        "category": {"S": "materials"},
        "createdAt": {"S": "2025-03-14T09:26:53Z"},
        "invoiceNum": {"S": f"INV-{n:08d}"},
    }


def naive(gz: bytes) -> int:
    lines = [json.loads(x) for x in gzip.decompress(gz).splitlines() if x.strip()]
    out = "[" + ",".join(json.dumps({"Item": i["Item"]}, separators=(",", ":")) for i in lines)
    return len((out + "]").encode())


def ours(gz: bytes) -> int:
    stream = gzip.GzipFile(fileobj=io.BytesIO(gz), mode="rb")
    return sum(len(piece) for piece in reader_array(stream, DATA_KEY))


def timed(fn: Callable[[bytes], int], gz: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    size = fn(gz)
    return time.perf_counter() - start, size


def peak(fn: Callable[[bytes], int], gz: bytes) -> int:
    tracemalloc.start()
    fn(gz)
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    args = parser.parse_args()
    raw = "".join(json.dumps({"Item": expense(n)}) + "\n" for n in range(args.items)).encode()
    gz = gzip.compress(raw)
    fns: dict[str, Callable[[bytes], int]] = {"ours": ours, "naive": naive}
    times: dict[str, list[float]] = {"ours": [], "naive": []}
    sizes = set()
    for _ in range(RUNS):  # interleaved: the machine's drift falls on both
        for name in ("naive", "ours"):
            seconds, size = timed(fns[name], gz)
            times[name].append(seconds)
            sizes.add(size)
    assert len(sizes) == 1, "ours and the baseline wrote different arrays"
    peaks = {name: peak(fn, gz) / 1e6 for name, fn in fns.items()}
    mb = len(raw) / 1e6
    t = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.items:,} items, {mb:,.1f} MB of JSON lines ({len(gz) / 1e6:,.1f} MB gzipped)")
    print(f"{'':8}{'MB/s':>10}{'peak MB':>10}")
    for name in ("ours", "naive"):
        print(f"{name:8}{mb / t[name]:>10.1f}{peaks[name]:>10.1f}")
    print(f"throughput ours/naive: {t['naive'] / t['ours']:.2f}x")
    print(f"peak memory ours/naive: {peaks['ours'] / peaks['naive']:.4f}x")


if __name__ == "__main__":
    main()
