"""RDSR parsing throughput: openir.dose.parse_rdsr against plain pydicom + a naive tree walk.

Baseline (measured in the same run): ``pydicom.dcmread`` then a recursive walk over every content
item by keyword, collecting each NUM's value and unit (what a quick script would do, without unit
conversion or structure). Both read from bytes already in memory, so disk speed does not count.
``--reference`` also times parse_rdsr(fast=False), the pydicom path the byte reader falls back to.
The machine may be shared: compare the ratios, which are measured in the same run.
Usage: .venv/bin/python benchmarks/dose_bench.py [--repeat N] [--reference]
"""

from __future__ import annotations

import argparse
import io
import os
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


def timeit(fn, data: bytes, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(data)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reference", action="store_true", help="also time parse_rdsr(fast=False)")
    args = ap.parse_args()
    cases = []
    real = sorted((SHARED / "pyskindose-rdsr").glob("*.dcm"))
    if real:
        cases.append(("real (4 vendor files)", [p.read_bytes() for p in real]))
    else:
        print(f"real RDSRs not found under {SHARED}; synthetic only")
    buf = io.BytesIO()
    synthetic_xray_rdsr(300, seed=0).save_as(buf, enforce_file_format=True)
    cases.append(("synthetic 300-event", [buf.getvalue()]))
    parsers = [("openir", parse_rdsr), ("naive", naive)]
    if args.reference:
        parsers.append(("pydicom-path", lambda b: parse_rdsr(b, fast=False)))
    print(f"{'case':24s} {'parser':>13s} {'reports/s':>10s} {'events/s':>10s}  ratio (parser time / openir time)")
    for name, blobs in cases:
        events = sum(parse_rdsr(b).number_of_events for b in blobs)
        n = len(blobs)
        times = {label: sum(timeit(fn, b, args.repeat) for b in blobs) for label, fn in parsers}
        for label, _ in parsers:
            t = times[label]
            print(f"{name:24s} {label:>13s} {n / t:10.2f} {events / t:10.0f}  {t / times['openir']:.2f}x")
        print(f"{name:24s} openir is {times['naive'] / times['openir']:.1f}x faster than the naive pydicom walk")


if __name__ == "__main__":
    main()
