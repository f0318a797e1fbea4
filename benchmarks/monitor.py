"""Cost of watching a network train with ``bayesactiv.monitor.FiringMonitor``.

Three measurements, each side by side in one run:

1. **Counting on the training batches** (``FiringMonitor.training_batches``): the time of a
   training step (forward, cross-entropy, backward, Adam step) with and without the
   counting hooks, interleaved: each repetition runs ``--steps`` plain steps and as many
   counted steps (inside an open block), in alternating order, on copies of one network;
   the table gives the median step times and the median of the per-repetition ratios (the
   goal: <= 1.05x). The cost of opening and closing a block (once per epoch: the counts
   copied to the host and the epoch's dataset built) is given apart, in milliseconds.
2. **observe** relative to one training epoch on the digits (1,437 training inputs in batches
   of 64, the 360 test inputs as the probe, ``window_size=20``), interleaved likewise.
3. **The store**: a network of 2 x 1,000 ReLU units observed on 500 probe inputs for 50 epochs
   (``window_size=20``, 2,000 units an epoch), with ``store=`` (a history store: each epoch
   saved to a store of its own) against without: the cost per epoch at epochs 1, 10, 25 and
   50 (it should not grow with the epochs), the history store's size, and the time of
   ``bayesactiv.open_dataset`` reading the whole history back.

The load average is printed at the start and the end: other work on the machine slows both
sides of a ratio alike, but makes it noisier.

Usage::

    .venv/bin/python benchmarks/monitor.py                 # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/monitor.py --quick         # a small run
    .venv/bin/python benchmarks/monitor.py --device cuda   # the training steps on a GPU
    .venv/bin/python benchmarks/monitor.py --only store    # one of the three parts
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import bayesactiv as ba
from bayesactiv.monitor import FiringMonitor


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _networks() -> dict[str, tuple[nn.Module, list[str], tuple[int, ...], int]]:
    """name -> (network, hooked layers, input shape, batch size)."""
    torch.manual_seed(0)
    return {
        "digits MLP 64-256-256-10, batch 64": (
            nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10)), ["1", "3"], (64,), 64),
        "MLP 784-1024-1024-10, batch 256": (
            nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                          nn.Linear(1024, 10)), ["1", "3"], (784,), 256),
        "CNN 1-16-32 conv on 8x8 (per position), batch 128": (
            nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3),
                          nn.ReLU(), nn.Flatten(), nn.Linear(32 * 36, 10)),
            ["1", "3"], (1, 8, 8), 128),
    }


def _steps(net: nn.Module, opt: torch.optim.Optimizer, batches: list, device: torch.device
           ) -> float:
    _sync(device)
    start = time.perf_counter()
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    _sync(device)
    return (time.perf_counter() - start) / len(batches)


def bench_counting(device: torch.device, repeats: int, steps: int) -> None:
    print(f"\n1. training step with and without counting ({device}; {repeats} repetitions of "
          f"{steps} steps each, interleaved)")
    print(f"{'network':52s} {'plain ms':>9s} {'counted ms':>11s} {'ratio':>7s} "
          f"{'block ms':>9s}")
    for name, (net, layers, shape, batch) in _networks().items():
        g = torch.Generator().manual_seed(1)
        batches = [(torch.randn(batch, *shape, generator=g).to(device),
                    torch.randint(0, 10, (batch,), generator=g).to(device)) for _ in range(steps)]
        plain, counted = copy.deepcopy(net).to(device), copy.deepcopy(net).to(device)
        opt_plain = torch.optim.Adam(plain.parameters(), lr=1e-4)
        opt_counted = torch.optim.Adam(counted.parameters(), lr=1e-4)
        mon = FiringMonitor(counted, layers)
        plain.train()
        counted.train()
        epoch = 0
        for _ in range(2):  # warm-up: allocations, kernels
            _steps(plain, opt_plain, batches, device)
            with mon.training_batches(epoch):
                _steps(counted, opt_counted, batches, device)
            epoch += 1
        t_plain, t_counted, ratios, t_block = [], [], [], []
        for rep in range(repeats):
            block = mon.training_batches(epoch)
            epoch += 1
            start = time.perf_counter()
            block.__enter__()
            opened = time.perf_counter() - start
            if rep % 2:
                a = _steps(plain, opt_plain, batches, device)
                b = _steps(counted, opt_counted, batches, device)
            else:
                b = _steps(counted, opt_counted, batches, device)
                a = _steps(plain, opt_plain, batches, device)
            start = time.perf_counter()
            block.__exit__(None, None, None)
            t_block.append(opened + time.perf_counter() - start)
            t_plain.append(a)
            t_counted.append(b)
            ratios.append(b / a)
        print(f"{name:52s} {1e3 * statistics.median(t_plain):9.3f} "
              f"{1e3 * statistics.median(t_counted):11.3f} {statistics.median(ratios):6.3f}x "
              f"{1e3 * statistics.median(t_block):9.2f}")


def _digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-3)
    y = torch.tensor(data.target)
    return x[:1437], y[:1437], x[1437:]


def bench_observe(repeats: int) -> None:
    x, y, probe = _digits()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                        nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    mon = FiringMonitor(net, ["1", "3"], probe=probe, network="digits-mlp", window_size=20)
    batches = [(x[i:i + 64], y[i:i + 64]) for i in range(0, len(y), 64)]
    print(f"\n2. observe (360 probe inputs, 192 units, window_size=20) against one training "
          f"epoch (1,437 inputs, batches of 64, 128-64 MLP); {repeats} repetitions")
    net.train()
    _steps(net, opt, batches, torch.device("cpu"))
    mon.observe(0)  # warm-up (kernels loaded)
    t_epoch, t_observe, ratios = [], [], []
    for rep in range(repeats):
        a = _steps(net, opt, batches, torch.device("cpu")) * len(batches)
        start = time.perf_counter()
        mon.observe(rep + 1)
        b = time.perf_counter() - start
        t_epoch.append(a)
        t_observe.append(b)
        ratios.append(b / a)
    print(f"   one epoch {1e3 * statistics.median(t_epoch):.1f} ms, observe "
          f"{1e3 * statistics.median(t_observe):.1f} ms: {statistics.median(ratios):.2f}x an epoch")


def bench_store(epochs: int) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(),
                        nn.Linear(1000, 10))
    probe = torch.randn(500, 64)
    folder = Path(tempfile.mkdtemp(prefix="bayesactiv-monitor-bench-"))
    try:
        stored = FiringMonitor(net, ["1", "3"], probe=probe, network="wide", window_size=20,
                               store=folder / "run.zarr")
        memory = FiringMonitor(net, ["1", "3"], probe=probe, network="wide", window_size=20)
        memory.observe(0)  # warm-up
        print(f"\n3. store: {epochs} epochs x 2,000 units, 500 probe inputs, window_size=20 "
              f"(each epoch saved to its own store in the history store)")
        print(f"{'epoch':>6s} {'observe ms':>11s} {'with store ms':>14s} {'store cost ms':>14s}")
        shown = {1, 10, 25, 50, epochs}
        total_store = 0.0
        costs = []
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            memory.observe(epoch)
            a = time.perf_counter() - start
            start = time.perf_counter()
            stored.observe(epoch)
            b = time.perf_counter() - start
            total_store += b - a
            costs.append(b - a)
            if epoch in shown:
                print(f"{epoch:6d} {1e3 * a:11.1f} {1e3 * b:14.1f} {1e3 * (b - a):14.1f}")
        tenth = max(1, epochs // 5)
        print(f"   median store cost, epochs 1-{tenth}: "
              f"{1e3 * statistics.median(costs[:tenth]):.1f} ms; epochs {epochs - tenth + 1}-"
              f"{epochs}: {1e3 * statistics.median(costs[-tenth:]):.1f} ms")
        size = sum(p.stat().st_size for p in (folder / "run.zarr").rglob("*") if p.is_file())
        start = time.perf_counter()
        history = ba.open_dataset(folder / "run.zarr")
        t_open = time.perf_counter() - start
        print(f"   store cost over {epochs} epochs: {total_store:.2f} s in all "
              f"({1e3 * total_store / epochs:.0f} ms an epoch on average); store "
              f"{size / 2**20:.1f} MiB; open_dataset of the whole history "
              f"({history.sizes['unit']:,} units) {1e3 * t_open:.0f} ms")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run")
    parser.add_argument("--device", default="cpu", help="device of the training steps (cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--only", choices=("counting", "observe", "store"), default=None,
                        help="run one part only (default: all three)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"bayesactiv.monitor benchmark; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {_load()}")
    parts = ("counting", "observe", "store") if args.only is None else (args.only,)
    if "counting" in parts:
        bench_counting(device, repeats=5 if args.quick else 15, steps=10 if args.quick else 30)
    if device.type == "cpu" or not args.quick or args.only is not None:
        if "observe" in parts:
            bench_observe(repeats=3 if args.quick else 9)
        if "store" in parts:
            bench_store(epochs=10 if args.quick else 50)
    print(f"\n{_load()}")


if __name__ == "__main__":
    main()
