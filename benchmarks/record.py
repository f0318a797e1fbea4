"""Speed and memory of ``bayesactiv.record`` relative to the bare forward pass.

Times are measured side by side in one run: each repetition runs the bare forward
pass over the inputs, then ``record`` with all summaries, then ``record`` with
``summaries=False`` (interleaved, all with ``window_size=50`` and ``keep_events=False``),
and the table shows the medians and the median of the per-repetition ratios to the bare
pass. The numba kernels are compiled (or loaded from numba's on-disk cache) before any
timed region; the one-time costs are printed first. Memory is the peak resident-set
growth of a fresh process while recording a stream of batches (a generator, so the
inputs themselves are not held), at two input counts, with and without ``keep_events``.
The load average is printed at the start and the end: other work on the machine
slows the bare pass and ``record`` alike, but makes the ratios noisier.

After the one-time costs, a section measures the two rows of the recording targets
side by side: ``record`` against the bare forward pass of a 784-2048-2048-10 ReLU MLP
(12,000 inputs, batches of 500, both ReLU layers, ``window_size=100``), and the fixed
cost of one ``record`` call: ``record`` minus the bare forward pass, in milliseconds, for a
tiny input (8 inputs, one batch) and for the digits MLP on all 1,797 digits in one
batch with ``window_size=50`` as in the table (medians of many interleaved calls).
``--issue`` runs only that section (its warm-up calls load the kernels before any
timed region).

Usage::

    .venv/bin/python benchmarks/record.py            # full run (about 4 minutes on 2 quiet cores, 6 when busy)
    .venv/bin/python benchmarks/record.py --issue    # only the targets (about 1 minute)
    .venv/bin/python benchmarks/record.py --quick    # small run
    .venv/bin/python benchmarks/record.py --threads 1  # one thread for torch and numba
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
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
    """All 1,797 digits (the zoo's train and test splits), as the zoo networks see them."""
    try:
        from bayesactiv import zoo
        x = torch.cat([zoo.dataset("digits", split)[0] for split in ("train", "test")])
    except (ImportError, AttributeError, LookupError, OSError, ValueError, RuntimeError):
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

    def rec(summaries: bool, inputs: torch.Tensor = x) -> None:
        ba.record(net, inputs, layers, batch_size=batch, progress=False, window_size=50,
                  summaries=summaries)

    runs = {"bare": lambda: _bare(net, x, batch), "record": lambda: rec(True),
            "record(summaries=False)": lambda: rec(False)}
    warm = x[: 2 * batch]  # warm up: allocator, kernels for this dtype, code paths
    _bare(net, warm, batch)
    rec(True, warm)
    rec(False, warm)
    times = _interleaved(runs, reps)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = {k: statistics.median(t / b for t, b in zip(v, times["bare"], strict=True))
             for k, v in times.items()}
    return {"network": name, "inputs": x.shape[0], "batch": batch, "med": med, "ratio": ratio}


def _interleaved(runs: dict[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(reps):
        for key, fn in runs.items():
            times[key].append(_time(fn))
    return times


def issue_rows(reps: int, calls: int) -> None:
    """The recording targets: the wide MLP's ratio to the bare pass, and one call's fixed cost."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(),
                        nn.Linear(2048, 10))
    x = torch.randn(12_000, 784)
    layers = _relu_layers(net)

    def rec_mlp() -> None:
        ba.record(net, x, layers, batch_size=500, progress=False, window_size=100)

    _bare(net, x[:1000], 500)
    ba.record(net, x[:1000], layers, batch_size=500, progress=False, window_size=100)
    times = _interleaved({"bare": lambda: _bare(net, x, 500), "record": rec_mlp}, reps)
    ratios = sorted(r / b for r, b in zip(times["record"], times["bare"], strict=True))
    print(f"\nRecording targets (load average {_load()})")
    print(f"784-2048-2048-10 ReLU MLP, 12,000 inputs, batch 500, layers {layers}, "
          f"window_size=100: bare {statistics.median(times['bare']):.3f} s, record "
          f"{statistics.median(times['record']):.3f} s, ratio record/bare "
          f"{statistics.median(ratios):.3f} (median of {reps}; range {ratios[0]:.3f}-"
          f"{ratios[-1]:.3f}; goal <= 1.05)")

    mlp = _digits_mlp()
    digits = _digits_inputs((64,))
    mlp_layers = _relu_layers(mlp)
    tiny = digits[:8]
    for label, inputs, window in (("8 inputs, one batch, window_size=4", tiny, 4),
                                  ("1,797 digits, one batch, window_size=50", digits, 50)):
        size = inputs.shape[0]

        def rec(inputs: torch.Tensor = inputs, size: int = size, window: int = window) -> None:
            ba.record(mlp, inputs, mlp_layers, batch_size=size, progress=False,
                      window_size=window)

        rec()
        _bare(mlp, inputs, size)
        times = _interleaved({"bare": lambda inputs=inputs, size=size: _bare(mlp, inputs, size),
                              "record": rec}, calls)
        bare, recorded = statistics.median(times["bare"]), statistics.median(times["record"])
        ratio = statistics.median(r / b for r, b in zip(times["record"], times["bare"],
                                                        strict=True))
        print(f"fixed cost of one record call, digits MLP {mlp_layers}, {label}: bare "
              f"{1e3 * bare:.2f} ms, record {1e3 * recorded:.2f} ms, record - bare "
              f"{1e3 * (recorded - bare):.2f} ms (goal <= 2 ms), ratio {ratio:.2f} "
              f"(medians of {calls})")
    print(f"load average {_load()}")


def one_time_costs() -> None:
    """Print what the first call in a process costs: numba import, kernel load or compile."""
    t0 = time.perf_counter()
    import numba  # timed: the first record call in a process pays it
    import numpy as np

    from bayesactiv.recording import kernels
    kernels.compiled()
    t_import = time.perf_counter() - t0
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    t0 = time.perf_counter()
    ba.record(net, torch.randn(8, 3), "1", progress=False)
    t_first = time.perf_counter() - t0
    # a cold compile of the float32 multi-threaded kernel, as on a machine without the cache
    fresh = numba.njit(parallel=True, cache=False, nogil=True)(kernels._fused_kernel)  # the kernel's Python source, compiled afresh
    a = np.ones((4, 3), dtype=np.float32)
    u = a.shape[1]
    f32, i64 = np.zeros(u, np.float32), np.zeros(u, np.int64)
    t0 = time.perf_counter()
    fresh(a, f32, 0, 4, np.zeros((1, u), np.int64), f32.copy(), f32.copy(), i64.copy(), False,
          np.zeros((0, 0), np.bool_), True, i64.copy(), np.zeros((4, u)), np.zeros(u),
          np.full((2, u), -np.inf, np.float32), np.full((2, u), -1, np.int64), 0,
          np.zeros((1, 8), np.int64), 0.0, 1.0, 8.0, np.zeros(1, np.int64), 16)
    t_compile = time.perf_counter() - t0
    print(f"one-time costs, outside the timed regions: numba import {t_import:.2f} s; first "
          f"record call in a process (kernels loaded from numba's disk cache) {t_first:.2f} s; "
          f"cold compile of the fused kernel {t_compile:.1f} s (once per machine and activation "
          f"dtype; with its single-threaded twin and three small kernels, about 3x that)")


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
    parser.add_argument("--issue", action="store_true",
                        help="only the recording targets (the wide MLP's ratio, the fixed cost)")
    parser.add_argument("--reps", type=int, default=None,
                        help="repetitions of the wide MLP in the targets (default 9, 5 quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch and numba (default: torch's default)")
    args = parser.parse_args()
    if args.threads is not None:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    reps = 3
    n_wide = 5_000 if args.quick else 50_000
    width = 1024 if args.quick else 4096
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; "
          f"load average {_load()}")
    if not args.issue:
        one_time_costs()
    issue_rows(args.reps or (5 if args.quick else 9), 15 if args.quick else 41)
    if args.issue:
        return

    mlp, cnn = _digits_mlp(), _digits_cnn()
    digits_flat, digits_img = _digits_inputs((64,)), _digits_inputs((1, 8, 8))
    cases = [
        ("digits-mlp", mlp, digits_flat, 256, 11),
        ("digits-mlp", mlp, digits_flat, 1797, 11),
        ("digits-mlp x10 inputs", mlp, digits_flat.repeat(10, 1), 1797, 5),
        ("digits-cnn", cnn, digits_img, 256, 11),
        ("digits-cnn", cnn, digits_img, 1797, 11),
        ("digits-cnn x10 inputs", cnn, digits_img.repeat(10, 1, 1, 1), 1797, 5),
        (f"wide 784-{width}-{width}-10", _wide(width), torch.randn(n_wide, 784), 1000, reps),
    ]
    rows = [speed(name, net, x, batch, r) for name, net, x, batch, r in cases]
    print("\nTime (median of interleaved repetitions; ratio = median over repetitions of "
          "time / bare forward pass; window_size=50, keep_events=False)")
    head = f"{'network':28s} {'inputs':>7s} {'batch':>6s} {'bare s':>8s} {'record':>8s} " \
           f"{'ratio':>6s} {'no-summ':>8s} {'ratio':>6s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        med, ratio = r["med"], r["ratio"]
        print(f"{r['network']:28s} {r['inputs']:7d} {r['batch']:6d} {med['bare']:8.3f} "
              f"{med['record']:8.3f} {ratio['record']:6.2f} "
              f"{med['record(summaries=False)']:8.3f} {ratio['record(summaries=False)']:6.2f}")
    print(f"load average {_load()}")

    mem_width = 512 if args.quick else 1024
    counts = (5_000, 20_000) if args.quick else (20_000, 80_000)
    print(f"\nPeak RSS growth while recording a stream (784-{mem_width}-{mem_width}-10, "
          f"{2 * mem_width} units), MiB")
    print(f"{'inputs':>8s} {'keep_events=False':>18s} {'keep_events=True':>17s}")
    for n in counts:
        print(f"{n:8d} {memory(n, False, mem_width):18.1f} {memory(n, True, mem_width):17.1f}")
    print(f"load average {_load()}")


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
