"""Cold and warm start of a fit: the command line in a new process, the first fit of a Python
process, and the cost of 10^5 units against 10^3.

Every figure is measured side by side in one run, each row repeated and interleaved:

* ``bayesactiv fit small.nc`` (500 units x 1,000 inputs), a new process per run, with the
  native log densities (the default) and with the PyMC-compiled path they replace
  (``sampling.NATIVE_MODELS = False``, compiled by nutpie in every process); the floor is
  ``python -c "import bayesactiv, nutpie"``. "warm": numba's cache of the package's kernels
  is on disk (any run after the first on a machine); "cold": an empty cache folder
  (``NUMBA_CACHE_DIR``), as on the first run after an install.
* the first ``fit`` of a Python process (nutpie already imported) against the second, same
  data: the difference is the overhead of loading (or compiling) the model.
* ``fit`` + ``units(0.9)``, 10^5 units against 10^3 (2,000 inputs, two layers), each size
  new to the process, 4 chains x 1,000 draws + 1,000 tune.

Usage::

    .venv/bin/python benchmarks/cold_start.py            # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/cold_start.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import bayesactiv as ba

HERE = Path(__file__).resolve().parent
PY = sys.executable
_PYMC_PATH = ("import sys; from bayesactiv.bayes import sampling; sampling.NATIVE_MODELS = False; "
              "from bayesactiv.cli import main; sys.exit(main(sys.argv[1:]))")
_NATIVE_PATH = "import sys; from bayesactiv.cli import main; sys.exit(main(sys.argv[1:]))"


def small_dataset(path: Path) -> None:
    rng = np.random.default_rng(0)
    count = rng.binomial(1000, rng.beta(0.5, 5.0, 500))
    ba.save(ba.make_dataset(count, 1000, network="net", layer="fc1"), path)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


def command_line(runs: int, folder: Path) -> None:
    data = folder / "small.nc"
    small_dataset(data)
    fit_args = ["fit", str(data), "--seed", "1", "-o", str(folder / "out")]
    warm = dict(os.environ)
    rows = {"import bayesactiv, nutpie (floor)": [PY, "-c", "import bayesactiv, nutpie"],
            "fit, native (this version)": [PY, "-c", _NATIVE_PATH, *fit_args],
            "fit, PyMC-compiled (before)": [PY, "-c", _PYMC_PATH, *fit_args]}
    timed(rows["fit, native (this version)"][:], warm)  # fill numba's cache once
    times: dict[str, list[float]] = {k: [] for k in rows}
    times["fit, native, cold cache"] = []
    for _ in range(runs):
        for name, cmd in rows.items():
            times[name].append(timed(cmd, warm))
        with tempfile.TemporaryDirectory() as cache:
            times["fit, native, cold cache"].append(
                timed(rows["fit, native (this version)"], {**warm, "NUMBA_CACHE_DIR": cache}))
    print(f"## `bayesactiv fit small.nc` (500 units x 1,000 inputs), a new process each run, "
          f"{runs} interleaved runs\n")
    print("| what | median s | runs s | × floor |")
    print("|---|---|---|---|")
    floor = statistics.median(times["import bayesactiv, nutpie (floor)"])
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.2f} | "
              f"{', '.join(f'{t:.2f}' for t in ts)} | {statistics.median(ts) / floor:.2f} |")
    before = statistics.median(times["fit, PyMC-compiled (before)"])
    now = statistics.median(times["fit, native (this version)"])
    print(f"\nnative / PyMC-compiled: {now / before:.2f}\n")


_FIRST_FIT = """
import time, warnings, numpy as np
t0 = time.perf_counter(); import nutpie; t_nutpie = time.perf_counter() - t0
import bayesactiv as ba
rng = np.random.default_rng(0)
ds = ba.make_dataset(rng.binomial(1000, rng.beta(0.5, 5.0, 500)), 1000, network="n", layer="l")
warnings.simplefilter("ignore")
out = []
for _ in range(2):
    t0 = time.perf_counter()
    from bayesactiv.bayes import sampling  # the first time: loads the package's numba kernels
    sampling.NATIVE_MODELS = {native}
    ba.fit(ds, seed=1)
    out.append(time.perf_counter() - t0)
print(out[0], out[1], t_nutpie)
"""


def first_fit(runs: int) -> None:
    print("## first `fit` of a Python process against the second (500 units, 4 chains x 1,000 "
          "draws; the first includes loading bayesactiv.bayes and its kernels, nutpie was "
          "imported before)\n")
    print("| path | first fit s | second fit s | overhead s | `import nutpie` s |")
    print("|---|---|---|---|---|")
    for label, native in (("native (this version)", True), ("PyMC-compiled (before)", False)):
        rows = []
        for _ in range(runs):
            res = subprocess.run([PY, "-c", _FIRST_FIT.format(native=native)], check=True,
                                 capture_output=True, text=True)
            rows.append(tuple(float(v) for v in res.stdout.split()))
        med = [statistics.median(r[i] for r in rows) for i in range(3)]
        over = statistics.median(r[0] - r[1] for r in rows)
        print(f"| {label} | {med[0]:.2f} | {med[1]:.2f} | {over:.2f} | {med[2]:.2f} |")
    print()


_SCALING = """
import sys, time, warnings
sys.path.insert(0, {here!r})
import bayesactiv as ba, nutpie
from fit import simulate
warnings.simplefilter("ignore")
ba.fit(simulate(200, seed=9), seed=1).units(0.9)  # the kernels of the process, loaded once
out = []
for n in {sizes}:
    ds = simulate(n, seed=2)
    t0 = time.perf_counter(); ba.fit(ds, draws=1000, tune=1000, chains=4, seed=1).units(0.9)
    out.append(time.perf_counter() - t0)
print(*out)
"""


def scaling(runs: int) -> None:
    print("## `fit` + `units(0.9)`: 10^5 units against 10^3 (2,000 inputs, 2 layers), each a "
          "size new to the process\n")
    print("| run | 10^3 units s | 10^5 units s | ratio |")
    print("|---|---|---|---|")
    ratios = []
    for i in range(runs):
        sizes = [1_000, 100_000] if i % 2 == 0 else [100_000, 1_000]
        res = subprocess.run([PY, "-c", _SCALING.format(here=str(HERE), sizes=sizes)],
                             check=True, capture_output=True, text=True)
        got = dict(zip(sizes, map(float, res.stdout.split()), strict=True))
        ratios.append(got[100_000] / got[1_000])
        print(f"| {i + 1} | {got[1_000]:.2f} | {got[100_000]:.2f} | {ratios[-1]:.2f} |")
    print(f"\nmedian ratio: {statistics.median(ratios):.2f}\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min), cores: {os.cpu_count()}\n")
    with tempfile.TemporaryDirectory() as folder:
        command_line(args.runs, Path(folder))
    first_fit(args.runs)
    scaling(args.runs)
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
