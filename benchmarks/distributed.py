"""``record`` on 1 rank against 2 ranks (torch.distributed, gloo on CPU) over the same inputs.

Each configuration runs under ``torchrun --standalone``; every rank records its contiguous
shard of the same inputs (a 784-1024-1024-10 ReLU MLP, both hidden layers, windows of 100,
all summaries, ``hist_range`` fixed so that the two runs share their bin edges), and rank 0
writes the merged dataset. The script checks that the two datasets are identical (counts,
``n``, windows, histograms bit for bit; moments to 1e-9) and prints the wall time of each
``record`` call, timed inside the workers (the slowest rank), and their ratio. Both runs
share the machine's cores: on 2 cores, 2 ranks with one torch thread each against 1 rank with
two threads.

Usage::

    .venv/bin/python benchmarks/distributed.py             # 24,000 inputs
    .venv/bin/python benchmarks/distributed.py --inputs 6000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

import bayesactiv as ba

WORKER = textwrap.dedent('''
    import sys, time, torch, torch.distributed as dist
    from torch import nn
    import bayesactiv as ba
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(max(1, (__import__("os").cpu_count() or 2) // world))
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                        nn.Linear(1024, 10))
    n_inputs, out = int(sys.argv[1]), sys.argv[2]
    x = torch.randn(n_inputs, 784, generator=torch.Generator().manual_seed(1))
    per = n_inputs // world
    shard = x[rank * per:(rank + 1) * per]
    kw = dict(window_size=100, progress=False, batch_size=500, hist_range=(0.0, 8.0))
    ba.record(net, shard[:500], ["1", "3"], **kw)  # kernels loaded, threads started
    dist.barrier()
    t0 = time.perf_counter()
    ds = ba.record(net, shard, ["1", "3"], **kw)
    took = torch.tensor([time.perf_counter() - t0])
    dist.all_reduce(took, op=dist.ReduceOp.MAX)
    if rank == 0:
        ba.save(ds, f"{out}/ranks{world}.nc")
        print(float(took))
    dist.destroy_process_group()
''')


def run(world: int, n_inputs: int, folder: Path) -> float:
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc-per-node", str(world), str(folder / "worker.py"),
                          str(n_inputs), str(folder)], check=True, capture_output=True,
                         text=True)
    return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=24_000)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min), cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "worker.py").write_text(WORKER)
        times = {world: run(world, args.inputs, folder) for world in (1, 2)}
        one, two = (ba.open_dataset(folder / f"ranks{w}.nc") for w in (1, 2))
        exact = all(np.array_equal(one[v].values, two[v].values)
                    for v in ("count", "n", "window_count", "hist_count", "act_zero"))
        close = all(np.allclose(one[v].values, two[v].values, rtol=1e-9, atol=1e-12)
                    for v in ("act_mean", "act_var", "act_skewness", "act_kurtosis"))
    print(f"\n{args.inputs:,} inputs, 784-1024-1024-10 MLP, both hidden layers, batch 500")
    print("| ranks | record s (slowest rank) |")
    print("|---|---|")
    for world, t in times.items():
        print(f"| {world} | {t:.2f} |")
    print(f"\n2 ranks / 1 rank: {times[2] / times[1]:.2f}; datasets identical: counts, n, windows, "
          f"histograms, zeros {exact}; moments to 1e-9 {close}")
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
