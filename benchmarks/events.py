"""Kept events in memory against a zarr store: peak memory and time against the number of inputs.

Each case runs in a new process: a one-layer ReLU network (32 inputs, ``--units`` hidden
units, 4,096 by default) records ``--inputs`` random inputs with ``keep_events=True``, either
in memory or streamed to a zarr store (``record(..., store=...)``, which returns the store
opened lazily), and then runs the input bootstrap (``ba.baselines.bootstrap``,
``--resamples`` resamples) on the events: in memory on the numpy ``fired``, out of core
block by block on the dask ``fired``. The inputs arrive as an iterable of batches made on the
fly, so they take no memory of their own.

Printed per case: the wall time of ``record`` and of the bootstrap, the process's peak
resident memory (``ru_maxrss``), its resident memory after the imports and the network were
set up (the floor: torch, numpy, xarray...), and the difference, which is what the recording
and the bootstrap added. The in-memory path runs only where its events fit (``--memory-max``
inputs; its bootstrap also holds the events as float32, 4 bytes an event and unit). The
load average is printed beside the numbers.

Usage::

    .venv/bin/python benchmarks/events.py                          # 10^4, 10^5, 10^6 inputs
    .venv/bin/python benchmarks/events.py --inputs 10000 100000 --resamples 50
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

CASE = textwrap.dedent('''
    import json, resource, sys, time
    import numpy as np, torch
    from torch import nn
    import bayesactiv as ba

    n_inputs, units, resamples, mode, store = (int(sys.argv[1]), int(sys.argv[2]),
                                               int(sys.argv[3]), sys.argv[4], sys.argv[5])
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(32, units), nn.ReLU())

    class Batches:
        """Random inputs made batch by batch (seeded per batch): no memory of their own."""
        def __iter__(self):
            for start in range(0, n_inputs, 1000):
                g = torch.Generator().manual_seed(start)
                yield torch.randn(min(1000, n_inputs - start), 32, generator=g)

    def rss_mib():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

    floor = rss_mib()
    t0 = time.perf_counter()
    ds = ba.record(net, Batches(), ["1"], keep_events=True, progress=False,
                   store=store if mode == "store" else None)
    t1 = time.perf_counter()
    bs = ba.baselines.bootstrap(ds, n_resamples=resamples, seed=0)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"record_s": t1 - t0, "bootstrap_s": t2 - t1, "peak_mib": peak,
                      "floor_mib": floor, "n": int(ds["n"][0]),
                      "mean_width": float((bs["high"] - bs["low"]).mean())}))
''')


def run_case(n_inputs: int, units: int, resamples: int, mode: str, folder: str) -> dict:
    store = os.path.join(folder, f"events-{n_inputs}.zarr")
    out = subprocess.run([sys.executable, "-c", CASE, str(n_inputs), str(units), str(resamples),
                          mode, store], check=False, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"case {n_inputs} inputs, {mode}: failed\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--units", type=int, default=4096)
    parser.add_argument("--resamples", type=int, default=100)
    parser.add_argument("--memory-max", type=int, default=200_000,
                        help="largest number of inputs for the in-memory path")
    args = parser.parse_args(argv)
    print(f"{args.units} units, bootstrap of {args.resamples} resamples; "
          f"load average {os.getloadavg()[0]:.2f} at the start")
    print(f"{'inputs':>9} {'path':>9} {'record s':>9} {'bootstrap s':>12} {'peak MiB':>9} "
          f"{'floor MiB':>10} {'added MiB':>10}")
    with tempfile.TemporaryDirectory(dir=".") as folder:
        for n_inputs in args.inputs:
            modes = ["memory", "store"] if n_inputs <= args.memory_max else ["store"]
            widths = {}
            for mode in modes:
                r = run_case(n_inputs, args.units, args.resamples, mode, folder)
                widths[mode] = r["mean_width"]
                print(f"{n_inputs:>9} {mode:>9} {r['record_s']:>9.2f} {r['bootstrap_s']:>12.2f} "
                      f"{r['peak_mib']:>9.0f} {r['floor_mib']:>10.0f} "
                      f"{r['peak_mib'] - r['floor_mib']:>10.0f}", flush=True)
            if len(widths) == 2:
                print(f"{'':>9} mean interval width: in memory {widths['memory']:.5f}, "
                      f"store {widths['store']:.5f} (same distribution, other random streams)")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
