"""RDSR parsing throughput: openir.dose.parse_rdsr against plain pydicom + a naive tree walk.

Baseline (measured in the same run, interleaved with openir so that machine load hits both):
``pydicom.dcmread`` then a recursive walk over every content item by keyword, collecting each
NUM's value and unit (what a quick script would do, without unit conversion or structure). Both
read from bytes already in memory, so disk speed does not count. The naive walk is also timed with
the garbage collector off, to show how much of the gap is collector pauses on the baseline's side.
Each repeat gives one ratio (naive time / openir time); the median, min and max over repeats and
the coefficient of variation of each parser's time are printed: the issue-18 bar is a ratio >= 10x
on the 316-event report in every repeat.
``--reference`` also times parse_rdsr(fast=False), the pydicom path the byte reader falls back to.
Usage: .venv/bin/python benchmarks/dose_bench.py [--repeat N] [--reference]
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import statistics
import time
from pathlib import Path

import pydicom

from openir.dose import parse_rdsr
from openir.phantom.dose_reports import synthetic_xray_rdsr

SHARED = Path(os.environ.get("OPENIR_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def naive(data: bytes) -> int:
    ds = pydicom.dcmread(io.BytesIO(data))
    values = []

    def walk(items):
        for it in items:
            if it.ValueType == "NUM" and "MeasuredValueSequence" in it and it.MeasuredValueSequence:
                mv = it.MeasuredValueSequence[0]
                values.append((it.ConceptNameCodeSequence[0].CodeValue, float(mv.NumericValue),
                               mv.MeasurementUnitsCodeSequence[0].CodeValue))
            if "ContentSequence" in it:
                walk(it.ContentSequence)

    walk(ds.ContentSequence)
    return len(values)


def naive_nogc(data: bytes) -> int:
    gc.disable()
    try:
        return naive(data)
    finally:
        gc.enable()


def _once(fn, blobs: list[bytes]) -> float:
    t = time.perf_counter()
    for b in blobs:
        fn(b)
    return time.perf_counter() - t


def _cv(xs: list[float]) -> float:
    return statistics.pstdev(xs) / statistics.mean(xs) if len(xs) > 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--reference", action="store_true", help="also time parse_rdsr(fast=False)")
    args = ap.parse_args()
    cases = []
    real = sorted((SHARED / "pyskindose-rdsr").glob("*.dcm"))
    if real:
        cases.append(("real (4 vendor files)", [p.read_bytes() for p in real]))
    else:
        print(f"real RDSRs not found under {SHARED}; synthetic only")
    buf = io.BytesIO()
    synthetic_xray_rdsr(316, seed=0).save_as(buf, enforce_file_format=True)
    cases.append(("synthetic 316-event", [buf.getvalue()]))
    parsers = [("openir", parse_rdsr), ("naive", naive), ("naive, gc off", naive_nogc)]
    if args.reference:
        parsers.append(("pydicom-path", lambda b: parse_rdsr(b, fast=False)))
    print(f"load average {os.getloadavg()[0]:.1f}; {args.repeat} repeats, interleaved")
    print(f"{'case':22s} {'parser':>14s} {'median s':>9s} {'CV':>6s} {'reports/s':>10s} {'events/s':>9s}"
          f"  ratio to openir: median [min, max]")
    for name, blobs in cases:
        events = sum(parse_rdsr(b).number_of_events for b in blobs)
        for _, fn in parsers:  # warm up every path once
            _once(fn, blobs)
        times: dict[str, list[float]] = {label: [] for label, _ in parsers}
        for _ in range(args.repeat):
            for label, fn in parsers:
                times[label].append(_once(fn, blobs))
        for label, _ in parsers:
            ts = times[label]
            med = statistics.median(ts)
            ratios = [t / o for t, o in zip(ts, times["openir"], strict=True)]
            print(f"{name:22s} {label:>14s} {med:9.4f} {_cv(ts):6.1%} {len(blobs) / med:10.2f} {events / med:9.0f}"
                  f"  {statistics.median(ratios):.1f}x [{min(ratios):.1f}, {max(ratios):.1f}]")


if __name__ == "__main__":
    main()
