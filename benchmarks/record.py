"""Speed and memory of ``bayesactiv.record`` relative to the bare forward pass.

Times are measured side by side in one run: each repetition runs the bare forward
pass over the inputs, then ``record`` with all summaries, then ``record`` with
``summaries=False`` (interleaved), and the table shows the medians and their ratios
to the bare pass. Memory is the peak resident-set growth of a fresh process while
recording a stream of batches (a generator, so the inputs themselves are not held),
at two input counts, with and without ``keep_events``.

Usage::

    .venv/bin/python benchmarks/record.py            # full run (a few minutes on 2 cores)
    .venv/bin/python benchmarks/record.py --quick    # small run
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import bayesactiv as ba


def _digits_mlp() -> nn.Module:
    try:
        from bayesactiv import zoo

        return zoo.load("digits-mlp")
    except (ImportError, AttributeError, LookupError, OSError, ValueError, RuntimeError):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                             nn.Linear(64, 10))


def _digits_cnn() -> nn.Module:
    try:
        from bayesactiv import zoo

        return zoo.load("digits-cnn")
    except (ImportError, AttributeError, LookupError, OSError, ValueError, RuntimeError):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(32 * 64, 10))


def _wide(width: int = 4096) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, 10))


def _relu_layers(net: nn.Module) -> list[str]:
    return [name for name, m in net.named_modules() if isinstance(m, nn.ReLU)]


def _digits_inputs(shape: tuple[int, ...]) -> torch.Tensor:
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().data, dtype=torch.float32) / 16.0
    return x.reshape(-1, *shape)


def _bare(net: nn.Module, x: torch.Tensor, batch: int) -> None:
    net.eval()
    with torch.no_grad():
        for start in range(0, x.shape[0], batch):
            net(x[start : start + batch])


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def speed(name: str, net: nn.Module, x: torch.Tensor, batch: int, reps: int) -> dict:
    layers = _relu_layers(net)

    def rec(summaries: bool) -> None:
        ba.record(net, x, layers, batch_size=batch, progress=False, window_size=50,
                  summaries=summaries)

    runs = {"bare": lambda: _bare(net, x, batch), "record": lambda: rec(True),
            "record(summaries=False)": lambda: rec(False)}
    for fn in runs.values():  # warm up
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(reps):
        for key, fn in runs.items():
            times[key].append(_time(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"network": name, "inputs": x.shape[0], "batch": batch, **med}


def _memory_child(n_inputs: int, keep_events: bool, width: int, queue: mp.Queue) -> None:
    torch.set_num_threads(2)
    net = _wide(width)
    batch = 1000

    def stream():
        g = torch.Generator().manual_seed(1)
        for _ in range(n_inputs // batch):
            yield torch.randn(batch, 784, generator=g)

    _bare(net, torch.randn(batch, 784), batch)  # warm the allocator
    ba.record(net, torch.randn(batch, 784), _relu_layers(net), progress=False)
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
        fh.write("5")
    before = _status_kib("VmRSS")
    ba.record(net, stream(), _relu_layers(net), keep_events=keep_events, progress=False)
    queue.put(max(_status_kib("VmHWM") - before, 0) / 1024)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def memory(n_inputs: int, keep_events: bool, width: int) -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_memory_child, args=(n_inputs, keep_events, width, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run")
    args = parser.parse_args()
    reps = 3
    n_wide = 5_000 if args.quick else 50_000
    width = 1024 if args.quick else 4096
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")

    cases = [
        ("digits-mlp 64-128-64-10", _digits_mlp(), _digits_inputs((64,)), 256),
        ("digits-cnn 1x8x8 conv16-conv32", _digits_cnn(), _digits_inputs((1, 8, 8)), 256),
        (f"wide 784-{width}-{width}-10", _wide(width), torch.randn(n_wide, 784), 1000),
    ]
    rows = [speed(name, net, x, batch, reps) for name, net, x, batch in cases]
    print("\nTime (median of interleaved repetitions; ratio = time / bare forward pass)")
    head = f"{'network':34s} {'inputs':>7s} {'bare s':>8s} {'record':>8s} {'ratio':>6s} " \
           f"{'no-summ':>8s} {'ratio':>6s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['network']:34s} {r['inputs']:7d} {r['bare']:8.3f} {r['record']:8.3f} "
              f"{r['record'] / r['bare']:6.2f} {r['record(summaries=False)']:8.3f} "
              f"{r['record(summaries=False)'] / r['bare']:6.2f}")

    mem_width = 512 if args.quick else 1024
    counts = (5_000, 20_000) if args.quick else (20_000, 80_000)
    print(f"\nPeak RSS growth while recording a stream (784-{mem_width}-{mem_width}-10, "
          f"{2 * mem_width} units), MiB")
    print(f"{'inputs':>8s} {'keep_events=False':>18s} {'keep_events=True':>17s}")
    for n in counts:
        print(f"{n:8d} {memory(n, False, mem_width):18.1f} {memory(n, True, mem_width):17.1f}")


if __name__ == "__main__":
    main()
