"""What a convolution's firing tells under each spatial rule: a conv stem on real digits.

Run: ``.venv/bin/python benchmarks/conv_events.py``. A conv -> batch norm -> ReLU stem (16
channels, 3 x 3, trained 200 steps with a linear read-out on sklearn's digits, seeded) is
recorded on 360 held-out digits with ``spatial="any"`` (an event per input) and with the
default ``spatial="per_position"`` (an event per position, clustered by input). Printed per
rule: how many channels fired on every input (or event), the spread of the channels'
firing fractions, and, for the default, the median design effect and the median 90%
interval width of ``fit(ds).units()``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import bayesactiv as ba


def main() -> None:
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(data.target)
    torch.manual_seed(0)
    stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
    net = nn.Sequential(stem, nn.Flatten(), nn.Linear(16 * 64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    train, test = slice(0, 1437), slice(1437, 1797)
    for step in range(200):
        idx = torch.randint(0, 1437, (128,))
        opt.zero_grad()
        nn.functional.cross_entropy(net(x[train][idx]), y[train][idx]).backward()
        opt.step()
    net.eval()
    acc = float((net(x[test]).argmax(1) == y[test]).float().mean())
    print(f"test accuracy {acc:.3f} on {x[test].shape[0]} digits")
    for spatial in ("any", "per_position"):
        ds = ba.record(net, x[test], "0.2", spatial=spatial, progress=False, network="stem")
        frac = ds["count"].values / ds["n"].values
        always = int((ds["count"] == ds["n"]).sum())
        line = (f"spatial={spatial!r}: events per channel {int(ds['n'][0])}; channels firing on "
                f"every event {always} of {ds.sizes['unit']}; firing fraction min "
                f"{frac.min():.3f}, median {np.median(frac):.3f}, max {frac.max():.3f}")
        if spatial == "per_position":
            anywhere = ds["cluster_fired"].values / ds["cluster_n"].values
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ba.ConvergenceWarning)
                u = ba.fit(ds, seed=0).units(0.9)
            line += (f"; fired anywhere on every input: {int((anywhere == 1).sum())} channels; "
                     f"median design effect {float(np.median(u['design_effect'])):.1f}; median "
                     f"90% interval width {float((u['high'] - u['low']).median()):.3f}")
        print(line)


if __name__ == "__main__":
    main()
