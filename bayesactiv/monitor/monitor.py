"""Watching a network's firing while it trains: :class:`FiringMonitor`.

Two sources of firing counts, each kept as a history of per-epoch activation datasets
(counts per unit, so the history stays small):

* :meth:`FiringMonitor.observe` records a fixed set of inputs, the *probe*, with
  :func:`bayesactiv.record` on the weights of the moment (eval mode, no gradients, every
  submodule's training mode restored and every hook removed afterwards), and tags the
  units with the epoch (:func:`bayesactiv.data.set_epoch`). Its counts are exactly those
  of :func:`bayesactiv.record` on the same weights.
* :meth:`FiringMonitor.training_batches`, a context manager around an epoch's training
  loop, counts firing on the training batches themselves, with no extra forward pass
  (:mod:`bayesactiv.monitor.training`). Its datasets name the network ``network + ":train"``
  and carry ``attrs["monitor_source"] == "training_batches"`` (``"probe"`` for observe's), so
  they are never mistaken for the probe's, and the same statistics apply to both.

Stores
------
With ``store="run.zarr"`` (and ``training_store=`` for the training-batch counts) the history
is kept in a *history store*: a folder holding a marker file, ``bayesactiv_history.json``
(format, version and the monitor's signature: network, layers and recording options), and
one ordinary zarr store per epoch, ``epoch_000007.zarr``, written by :func:`bayesactiv.save`
when the epoch ends. Saving an epoch writes that epoch's store only, so its cost does not grow
with the epochs. Each save is atomic (a temporary folder moved into place), so a run killed
between or during two epochs keeps every epoch saved before: an epoch is in the history
exactly when its store is complete, and a save interrupted by the kill leaves only a
temporary folder, removed when the store is resumed. ``bayesactiv.open_dataset("run.zarr")``
reads the whole history (every epoch's store checked, the epochs combined in order), and
``bayesactiv report run.zarr`` draws it, one group per layer and epoch.

A new monitor given an existing history store *resumes* it when the marker names a monitor
of the same network, layers and recording options: the stored epochs stay in
:meth:`FiringMonitor.dataset` and later epochs are added beside them
(:attr:`FiringMonitor.next_epoch` says where to continue). Any other path that exists is
refused at construction, before any training, and left as it is, unless it is an empty
folder: a file, a folder of other things, an activation dataset (a history saved whole, as
earlier versions did, included), another monitor's history store. Nothing is ever
deleted but the temporary files of saves that were killed.

On each epoch's histograms: the ``hist_group`` of an epoch is ``network/layer@epoch``, like
its unit ids, so the histograms of every epoch are kept side by side.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from bayesactiv.data.checks import ArgumentError, check_int
from bayesactiv.data.combine import combine
from bayesactiv.data.contract import DatasetError, set_epoch, validate
from bayesactiv.data.files import (
    check_save_path,
    create_history_store,
    epoch_store_name,
    history_epochs,
    history_store_unfinished,
    is_history_store,
    open_dataset,
    read_history_marker,
    remove_stale_epoch_saves,
    save,
)
from bayesactiv.monitor.indicator import (
    DEAD_BELOW,
    FiringAlarm,
    change_from_draws,
    join_draws,
    summarize_draws,
    trajectory_draws,
)
from bayesactiv.monitor.training import TRAINING_SOURCE, TrainingBatchCounter, training_network
from bayesactiv.recording.inputs import (
    Batches,
    check_module,
    check_spatial,
    module_dtype,
    resolve_layers,
)
from bayesactiv.recording.recorder import default_network_name, record
from bayesactiv.recording.rules import Fixed, ThresholdRule, as_rule

__all__ = ["PROBE_SOURCE", "FiringMonitor", "firing_scalars"]

#: ``attrs["monitor_source"]`` of the probe's records (see also ``TRAINING_SOURCE``).
PROBE_SOURCE = "probe"


class _History:
    """The per-epoch datasets of one source, combined, and the history store they are saved to.

    With a store, each epoch's dataset is saved on its own (``epoch_000007.zarr`` inside the
    store, with :func:`bayesactiv.save`), so an epoch costs the same whatever came before.
    """

    def __init__(self, store: Path | None, signature: dict[str, Any], what: str,
                 check_n: bool):
        self.store = store
        self.signature = signature
        self.what = what
        self.check_n = check_n
        self._combined: xr.Dataset | None = None
        self._pending: list[xr.Dataset] = []  # epochs not combined yet (until asked)
        self._unsaved: list[tuple[int, xr.Dataset]] = []  # epochs whose save failed or is due
        self._created = False  # whether the store holds its marker
        self.epochs: list[int] = []
        self._layout: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if store is not None and is_history_store(store):
            self._resume(store)

    def _resume(self, store: Path) -> None:
        shown = repr(str(store))
        try:
            stored = read_history_marker(store)["monitor"]
        except DatasetError as err:
            raise ArgumentError(f"{self.what}: {err}") from None
        if stored != self.signature:
            differ = sorted(k for k in {*stored, *self.signature}
                            if stored.get(k) != self.signature.get(k))
            details = "; ".join(f"{k}: stored {stored.get(k)!r}, now {self.signature.get(k)!r}"
                                for k in differ)
            raise ArgumentError(f"{self.what}: {shown} holds the history of another monitor "
                                f"({details}); it is not resumed nor replaced (choose another "
                                f"store, or remove it)")
        self._created = True
        remove_stale_epoch_saves(store)
        if not history_epochs(store):  # (created, but killed before its first epoch was saved)
            return
        ds = open_dataset(store)
        self._combined = ds
        self.epochs = sorted(int(e) for e in np.unique(ds["epoch"].values))
        self._layout = _layout(ds.isel(unit=ds["epoch"].values == self.epochs[0]))

    def check_epoch(self, epoch: Any) -> int:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)):
            raise TypeError(f"epoch: expected an integer, got {epoch!r}")
        epoch = int(epoch)
        if epoch < 0:
            raise ValueError(f"epoch: must be >= 0, got {epoch}")
        if self.epochs and epoch <= self.epochs[-1]:
            where = f" (resumed from {str(self.store)!r})" if self.store is not None else ""
            raise ValueError(f"epoch: {self.what} epochs must be strictly increasing; {epoch} "
                             f"comes after epoch {self.epochs[-1]}{where}")
        return epoch

    def append(self, ds: xr.Dataset, epoch: int) -> None:
        layout = _layout(ds)
        if self._layout is not None:
            first_layers, first_index, first_n = self._layout
            layers, index, n = layout
            if not (np.array_equal(first_layers, layers) and np.array_equal(first_index, index)):
                raise ValueError(f"{self.what}: epoch {epoch} has other units than the epochs "
                                 f"before ({len(layers)} units vs {len(first_layers)}); the "
                                 f"network's layers changed")
            if self.check_n and not np.array_equal(first_n, n):
                raise ValueError(f"probe: epoch {epoch} saw {int(n[0])} events per unit where "
                                 f"earlier epochs saw {int(first_n[0])}; the probe must stay "
                                 f"the same inputs")
        self._pending.append(ds)
        self._layout = self._layout or layout
        self.epochs.append(epoch)
        if self.store is not None:  # (a failed save leaves the epoch here; the next one saves it)
            self._unsaved.append((epoch, ds))
            self._save()

    def _save(self) -> None:
        """Save every epoch not saved yet, each to its own store (only that store is written)."""
        assert self.store is not None
        if not self._created:
            try:
                create_history_store(self.store, self.signature)
            except DatasetError as err:
                raise ArgumentError(f"{self.what}: {err}") from None
            self._created = True
        while self._unsaved:
            epoch, ds = self._unsaved[0]
            save(ds, self.store / epoch_store_name(epoch))
            self._unsaved.pop(0)

    @property
    def data(self) -> xr.Dataset | None:
        """Every epoch's dataset, combined (None before the first)."""
        if self._pending:
            parts = ([] if self._combined is None else [self._combined]) + self._pending
            data = parts[0].copy() if len(parts) == 1 else combine(parts, mismatch="raise")
            data.attrs.pop("epoch", None)
            data.attrs["source"] = parts[-1].attrs.get("source", "?")  # (not combine's nesting)
            self._combined, self._pending = data, []
        return self._combined


def _layout(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (ds["layer"].values.astype(str), ds["index"].values, ds["n"].values)


def _check_store(store: Any, name: str) -> Path | None:
    """The history store ``store`` checked: a new path, an empty folder or a history store.

    Anything else is refused, and left as it is: a file, a folder of other things, an
    activation dataset (a history saved whole by an earlier bayesactiv included).
    """
    if store is None:
        return None
    if not isinstance(store, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a path to a '.zarr' store, got {store!r}")
    path = Path(store)
    if path.suffix.lower() != ".zarr":
        raise ValueError(f"{name}: expected a '.zarr' path, got {str(path)!r}")
    if is_history_store(path) or (path.is_dir() and history_store_unfinished(path)):
        return path
    try:
        check_save_path(path)
    except DatasetError as err:
        raise ArgumentError(f"{name}: {err}") from None
    if path.exists():  # a zarr store that bayesactiv wrote: an activation dataset
        import zarr

        shown = repr(str(path))
        if "monitor" in zarr.open_group(str(path), mode="r").attrs:
            raise ArgumentError(f"{name}: {shown} holds a monitor's history saved whole, as "
                                f"earlier versions of bayesactiv did; a monitor now keeps one "
                                f"store per epoch and does not append to it (choose another "
                                f"store; bayesactiv.open_dataset still reads the old one)")
        raise ArgumentError(f"{name}: {shown} holds an activation dataset that no "
                            f"FiringMonitor wrote; a monitor resumes only a history of its "
                            f"own (choose another store, or remove it)")
    return path


def _tag_epoch(ds: xr.Dataset, epoch: int, signature: dict[str, Any], source: str) -> xr.Dataset:
    """``ds`` tagged with ``epoch`` (unit ids and histogram groups gain ``@epoch``)."""
    out = set_epoch(ds, epoch)
    if "hist_group" in out.coords:
        groups = np.array([f"{g}@{epoch}" for g in out["hist_group"].values.astype(str)],
                          dtype=object)
        out = out.assign_coords(hist_group=("hist_group", groups))
    out.attrs["monitor"] = json.dumps(signature, sort_keys=True)
    out.attrs["monitor_source"] = source
    return validate(out)


class FiringMonitor:
    """Record how a network's units fire, epoch after epoch, while it trains.

    Parameters
    ----------
    net : torch.nn.Module
        The network being trained.
    layers : str or sequence of str
        Module names or glob patterns, as for :func:`bayesactiv.record`; checked now (an
        unknown name or a pattern that matches nothing raises here).
    probe : tensor, array, mapping or re-iterable of batches, optional
        The fixed inputs that :meth:`observe` records (as ``inputs`` of
        :func:`bayesactiv.record`; a one-shot iterator is refused, since it is read at every
        epoch). None: only :meth:`training_batches` counts.
    network : str, optional
        The ``network`` coordinate; default the module's ``bayesactiv_network`` attribute or
        class name (:func:`bayesactiv.recording.recorder.default_network_name`).
    threshold : float or Fixed or FractionOfMax or Quantile
        The firing rule (``activation > threshold``). :meth:`training_batches` needs a
        fixed threshold.
    store : str or path-like, optional
        A ``.zarr`` store the probe's history is saved to after every :meth:`observe`
        (resumed when it holds this monitor's history; see the module notes).
    training_store : str or path-like, optional
        The same for the training-batch counts.
    batch_size, window_size, spatial, output, labels, keep_events, summaries, topk, \
hist_bins, hist_range, attention_mask
        Options of :func:`bayesactiv.record` for the probe (``window_size`` adds
        ``window_count``, which the Fano factor needs; ``keep_events`` keeps every epoch's
        raw events in memory). ``spatial`` and ``output`` apply to the training batches too.

    Raises
    ------
    TypeError, ValueError
        Naming the argument: not a module, unknown layers, an empty or one-shot probe, a
        store that is not ``.zarr`` or holds something else than this monitor's history.

    Examples
    --------
    >>> import torch, bayesactiv as ba
    >>> from bayesactiv.monitor import FiringMonitor
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    >>> mon = FiringMonitor(net, ["1"], probe=x[:32], network="mlp")
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> for epoch in range(3):
    ...     with mon.training_batches(epoch):
    ...         for i in range(0, 64, 16):
    ...             opt.zero_grad()
    ...             torch.nn.functional.cross_entropy(net(x[i:i + 16]), y[i:i + 16]).backward()
    ...             opt.step()
    ...     _ = mon.observe(epoch)
    >>> ds = mon.dataset()
    >>> ds.sizes["unit"], sorted(set(ds["epoch"].values.tolist())), int(ds["n"][0])
    (24, [0, 1, 2], 32)
    >>> train = mon.training_dataset()
    >>> str(train["network"][0].values), int(train["n"][0]), mon.next_epoch
    ('mlp:train', 64, 3)
    """

    def __init__(
        self,
        net: torch.nn.Module,
        layers: str | Sequence[str] = ("relu*",),
        probe: Any = None,
        network: str | None = None,
        *,
        threshold: float | ThresholdRule = 0.0,
        store: str | os.PathLike | None = None,
        training_store: str | os.PathLike | None = None,
        batch_size: int | None = None,
        window_size: int | None = None,
        spatial: str = "per_position",
        output: Any = None,
        labels: Any = None,
        keep_events: bool = False,
        summaries: bool = True,
        topk: int = 10,
        hist_bins: int = 64,
        hist_range: tuple[float, float] | None = None,
        attention_mask: str | None = "attention_mask",
    ):
        check_module(net, None)
        self.net = net
        self.network = default_network_name(net) if network is None else network
        if not isinstance(self.network, str) or not self.network or "/" in self.network:
            raise ValueError(f"network: must be a non-empty name without '/', got {network!r}")
        mods = dict(net.named_modules())
        self.layers = resolve_layers(net, layers, mods)
        slashed = [name for name in self.layers if "/" in name]
        if slashed:
            raise ValueError(f"layers: names {slashed} contain '/', which unit ids cannot hold")
        self._modules = {name: mods[name] for name in self.layers}
        self.rule = as_rule(threshold)
        check_spatial(spatial)
        if window_size is not None:
            window_size = check_int(window_size, "window_size", minimum=1)
        for name, value in (("keep_events", keep_events), ("summaries", summaries)):
            if not isinstance(value, bool):
                raise TypeError(f"{name}: expected True or False, got {value!r}")
        check_int(topk, "topk", minimum=0)
        if check_int(hist_bins, "hist_bins", minimum=2) % 2:
            raise ValueError(f"hist_bins: must be an even integer >= 2, got {hist_bins!r}")
        if output is not None and not (callable(output) or isinstance(output, (int, str))):
            raise TypeError(f"output: expected an index, a key or a callable, got {output!r}")
        self.probe = probe
        if probe is not None:
            if isinstance(probe, Sequence) and not isinstance(probe, (str, bytes)) \
                    and len(probe) == 0:
                raise ValueError("probe: empty; give the inputs that observe() records")
            batches = Batches(probe, batch_size, labels, module_dtype(net))
            if not batches.reiterable:
                raise ValueError("probe: a one-shot iterator or generator can be read only once, "
                                 "but observe() reads the probe at every epoch; pass a tensor, an "
                                 "array, a list of batches or a DataLoader")
        elif store is not None:
            raise ValueError("store: holds the probe's records, but no probe was given; pass "
                             "probe=..., or training_store= for the training-batch counts")
        self._record_options = {
            "threshold": self.rule, "window_size": window_size, "keep_events": keep_events,
            "batch_size": batch_size, "spatial": spatial, "output": output, "labels": labels,
            "summaries": summaries, "topk": topk, "hist_bins": hist_bins,
            "hist_range": hist_range, "attention_mask": attention_mask,
        }
        self.spatial, self.output = spatial, output
        store_path = _check_store(store, "store")
        training_path = _check_store(training_store, "training_store")
        if store_path is not None and training_path is not None and \
                store_path.resolve() == training_path.resolve():
            raise ValueError(f"training_store: the same path as store ({str(store_path)!r}); "
                             f"the two histories need a store each")
        common = {"network": self.network, "layers": self.layers,
                  "threshold_params": self.rule.params(), "spatial": spatial}
        self._probe = _History(store_path, {**common, "source": PROBE_SOURCE,
                                            "window_size": window_size,
                                            "keep_events": keep_events, "summaries": summaries},
                               "observe", check_n=True)
        self._training = _History(training_path, {**common, "source": TRAINING_SOURCE},
                                  "training_batches", check_n=False)
        self._counting = False
        self._indicator_cache: dict[tuple, dict[int, tuple[pd.DataFrame, dict]]] = {}

    # ------------------------------------------------------------ the probe

    @property
    def epochs(self) -> list[int]:
        """The epochs observed on the probe so far (a resumed store's included)."""
        return list(self._probe.epochs)

    @property
    def training_epochs(self) -> list[int]:
        """The epochs whose training batches were counted so far (a resumed store's included)."""
        return list(self._training.epochs)

    @property
    def next_epoch(self) -> int:
        """One past the last epoch observed or counted (0 at the start): where to go on."""
        last = [h.epochs[-1] for h in (self._probe, self._training) if h.epochs]
        return max(last) + 1 if last else 0

    def observe(self, epoch: int) -> xr.Dataset:
        """Record the probe's firing now and keep it as the record of ``epoch``.

        Exactly what :func:`bayesactiv.record` gives on the network's current weights
        (eval mode and no gradients while it runs; every submodule's training mode
        restored and every hook removed afterwards), tagged with ``epoch``. With a store,
        the history is saved before this returns.

        Parameters
        ----------
        epoch : int
            Non-negative, greater than every epoch observed before.

        Returns
        -------
        xarray.Dataset
            The epoch's activation dataset, with its ``epoch`` coordinate.

        Raises
        ------
        ValueError
            No probe, an epoch that is not after the last one, or a probe whose events
            changed between epochs.

        Examples
        --------
        >>> import torch
        >>> from bayesactiv.monitor import FiringMonitor
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU())
        >>> mon = FiringMonitor(net, "1", probe=torch.randn(10, 3), network="tiny")
        >>> mon.observe(0)["unit"].values[:2].tolist()
        ['tiny/1/0@0', 'tiny/1/1@0']
        >>> mon.observe(0)
        Traceback (most recent call last):
        ...
        ValueError: epoch: observe epochs must be strictly increasing; 0 comes after epoch 0
        """
        if self.probe is None:
            raise ValueError("probe: this monitor was made without a probe, so it has nothing to "
                             "observe; pass probe=... (it counts training batches only)")
        epoch = self._probe.check_epoch(epoch)
        ds = record(self.net, self.probe, self.layers, network=self.network, progress=False,
                    **self._record_options)
        tagged = _tag_epoch(ds, epoch, self._probe.signature, PROBE_SOURCE)
        self._probe.append(tagged, epoch)
        return tagged

    def _posterior(self, draws: int, dead_below: float, method: str | None, seed: int
                   ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """The indicator's draws of every observed epoch; each epoch is drawn once."""
        if not self._probe.epochs:
            raise ValueError("observe: no epoch observed yet; call observe(epoch) first")
        key = (draws, dead_below, method, seed)
        cache = self._indicator_cache.setdefault(key, {})
        missing = [e for e in self._probe.epochs if e not in cache]
        if missing:
            history = self._probe.data  # (read only: no copy; each epoch is validated below)
            epochs = history["epoch"].values
            for epoch in missing:
                # every epoch alone, with the probe's shared weights: what trajectory_draws
                # of the whole history gives, column for column
                cache[epoch] = trajectory_draws(
                    history.isel(unit=np.flatnonzero(epochs == epoch)), draws=draws,
                    dead_below=dead_below, method=method, seed=seed, epoch_seed=epoch)
        return join_draws([cache[e][0] for e in self._probe.epochs],
                          [cache[e][1] for e in self._probe.epochs])

    def trajectory(self, *, prob: float = 0.9, dead_below: float = DEAD_BELOW, draws: int = 1000,
                   method: str | None = None, seed: int = 0) -> pd.DataFrame:
        """The probe's posterior MFR, fraction of dead units and MF per layer and epoch.

        :func:`bayesactiv.monitor.indicator.firing_trajectory` of :meth:`dataset`, with each
        epoch's draws made once and kept, so that calling it after every epoch costs one
        epoch's draws.

        Parameters
        ----------
        prob, dead_below, draws, method, seed
            As for :func:`bayesactiv.monitor.indicator.firing_trajectory`.

        Returns
        -------
        pandas.DataFrame

        Examples
        --------
        >>> import torch
        >>> from bayesactiv.monitor import FiringMonitor
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU())
        >>> mon = FiringMonitor(net, "1", probe=torch.randn(50, 3), keep_events=True)
        >>> _ = mon.observe(0)
        >>> mon.trajectory(draws=200)[["epoch", "method", "inputs"]].values.tolist()
        [[0, 'inputs', 50]]
        """
        frame, d = self._posterior(draws, dead_below, method, seed)
        return summarize_draws(frame, d, prob=prob)

    def check(self, alarm: Any) -> Any:
        """Look for a :class:`bayesactiv.monitor.FiringAlarm` in the probe's history so far.

        Parameters
        ----------
        alarm : FiringAlarm

        Returns
        -------
        AlarmResult

        Examples
        --------
        >>> import torch
        >>> from bayesactiv.monitor import FiringAlarm, FiringMonitor
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU())
        >>> mon = FiringMonitor(net, "1", probe=torch.randn(50, 3), keep_events=True)
        >>> _ = mon.observe(0), mon.observe(1)
        >>> mon.check(FiringAlarm(margin=0.05)).fired
        False
        """
        if not isinstance(alarm, FiringAlarm):
            raise TypeError(f"alarm: expected a FiringAlarm, got {alarm!r}")
        if alarm.layers is not None:
            missing = sorted(set(alarm.layers) - set(self.layers))
            if missing:
                raise ValueError(f"alarm: watches layers {missing} that this monitor does not "
                                 f"record (layers {self.layers})")
        frame, d = self._posterior(alarm.draws, DEAD_BELOW, alarm.method, alarm.seed)
        table = change_from_draws(frame, d, reference=alarm.reference, start=alarm.start,
                                  margin=alarm.margin, direction=alarm.direction)
        return alarm.check_table(table)

    def dataset(self) -> xr.Dataset:
        """The activation dataset of every observed epoch, units tagged with their ``epoch``.

        Returns
        -------
        xarray.Dataset
            Validated; ``epoch`` coordinate on ``unit``.

        Raises
        ------
        ValueError
            When no epoch was observed yet.

        Examples
        --------
        >>> import torch
        >>> from bayesactiv.monitor import FiringMonitor
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU())
        >>> mon = FiringMonitor(net, "1", probe=torch.randn(10, 3))
        >>> _ = mon.observe(0), mon.observe(4)
        >>> mon.dataset()["epoch"].values.tolist()
        [0, 0, 0, 0, 0, 4, 4, 4, 4, 4]
        """
        if self._probe.data is None:
            raise ValueError("observe: no epoch observed yet; call observe(epoch) first")
        return validate(self._probe.data.copy())

    # ------------------------------------------------------------ the training batches

    @contextlib.contextmanager
    def training_batches(self, epoch: int) -> Iterator[TrainingBatchCounter]:
        """Count firing on the training batches of ``epoch``, with no extra forward pass.

        Inside the block, every forward pass the network makes in train mode is counted
        per unit (``activation > threshold``, on the layer's own device; outputs and
        gradients are untouched; see :mod:`bayesactiv.monitor.training`). When the block
        ends, the hooks are removed and the counts become the epoch's dataset of the
        training history (:meth:`training_dataset`), saved to ``training_store`` when
        given. A block left by an exception removes the hooks and keeps nothing.

        Parameters
        ----------
        epoch : int
            Non-negative, greater than every epoch counted before.

        Yields
        ------
        TrainingBatchCounter
            Its ``dataset`` holds the epoch's counts once the block has ended.

        Raises
        ------
        TypeError
            A threshold rule that is not fixed.
        ValueError
            An epoch not after the last one, or (at the end of the block) layers that ran
            no forward pass in train mode.
        RuntimeError
            Nested blocks.

        Examples
        --------
        >>> import torch
        >>> from bayesactiv.monitor import FiringMonitor
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU())
        >>> mon = FiringMonitor(net, "1", network="tiny")
        >>> with mon.training_batches(0) as counted:
        ...     loss = net(torch.randn(8, 3)).sum()
        ...     loss.backward()
        >>> counted.batches, int(counted.dataset["n"][0]), counted.dataset.attrs["monitor_source"]
        (1, 8, 'training_batches')
        """
        if not isinstance(self.rule, Fixed):
            raise TypeError(f"threshold: counting training batches needs a fixed threshold; "
                             f"{self.rule!r} needs a statistic of a whole recording (observe "
                             f"the probe with it instead)")
        epoch = self._training.check_epoch(epoch)
        if self._counting:
            raise RuntimeError("training_batches: a block is open already; blocks do not nest")
        counter = TrainingBatchCounter(self.net, self._modules, self.rule, self.spatial,
                                       self.output)
        self._counting = True
        try:
            counter.attach()
            yield counter
        finally:
            counter.detach()
            self._counting = False
        ds = counter.build(training_network(self.network), {})
        counter.dataset = _tag_epoch(ds, epoch, self._training.signature, TRAINING_SOURCE)
        self._training.append(counter.dataset, epoch)

    def training_dataset(self) -> xr.Dataset:
        """The counts on the training batches of every counted epoch (``epoch`` coordinate).

        The network is named ``network + ":train"``; ``attrs["monitor_source"]`` is
        ``"training_batches"``.

        Raises
        ------
        ValueError
            When no epoch was counted yet.

        Examples
        --------
        >>> import torch
        >>> from bayesactiv.monitor import FiringMonitor
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU())
        >>> mon = FiringMonitor(net, "1", network="tiny")
        >>> with mon.training_batches(2):
        ...     _ = net(torch.randn(8, 3))
        >>> mon.training_dataset()["unit"].values[0]
        'tiny:train/1/0@2'
        """
        if self._training.data is None:
            raise ValueError("training_batches: no epoch counted yet; run the training loop "
                             "inside `with monitor.training_batches(epoch):` first")
        return validate(self._training.data.copy())

    def __repr__(self) -> str:
        return (f"FiringMonitor(network={self.network!r}, layers={self.layers}, "
                f"epochs observed={len(self._probe.epochs)}, "
                f"epochs counted={len(self._training.epochs)})")


def firing_scalars(ds: xr.Dataset) -> pd.DataFrame:
    """Plug-in firing summaries per network, layer and epoch, the scalars worth plotting.

    Per group: ``units``, ``mfr`` (the mean over units of ``count / n``), ``frac_silent``
    (the fraction of units that never fired: ``count == 0``), ``frac_saturated``
    (``count == n``), and, with ``window_count``, ``mf`` (the mean over units of the
    window-count Fano factor, :func:`bayesactiv.stats.spikes.fano`, units that never fired
    left out). Point values without
    intervals; the posterior versions come from :func:`bayesactiv.fit`.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset; with an ``epoch`` coordinate, one row per epoch (else the
        ``epoch`` column is -1).

    Returns
    -------
    pandas.DataFrame
        Columns ``network``, ``layer``, ``epoch``, ``units``, ``mfr``, ``frac_silent``,
        ``frac_saturated`` (and ``mf``).

    Examples
    --------
    >>> import bayesactiv as ba
    >>> from bayesactiv.monitor import firing_scalars
    >>> ds = ba.make_dataset([0, 5, 10, 10], 10, network="n", layer="l", epoch=[1, 1, 2, 2])
    >>> firing_scalars(ds)[["epoch", "mfr", "frac_silent", "frac_saturated"]].values.tolist()
    [[1.0, 0.25, 0.5, 0.0], [2.0, 1.0, 0.0, 1.0]]
    """
    validate(ds)
    count = ds["count"].values.astype(np.float64)
    n = ds["n"].values.astype(np.float64)
    frame = pd.DataFrame({
        "network": ds["network"].values.astype(str),
        "layer": ds["layer"].values.astype(str),
        "epoch": ds["epoch"].values if "epoch" in ds.coords else np.full(count.shape, -1),
        "rate": np.divide(count, n, out=np.full_like(count, np.nan), where=n > 0),
        "silent": count == 0,
        "saturated": (count == n) & (n > 0),
    })
    named = {"units": ("rate", "size"), "mfr": ("rate", "mean"),
             "frac_silent": ("silent", "mean"), "frac_saturated": ("saturated", "mean")}
    if "window_count" in ds.data_vars:
        from bayesactiv.stats.spikes import fano

        frame["fano"] = fano(ds["window_count"].values.astype(np.float64))
        named["mf"] = ("fano", "mean")
    keys = ["network", "layer", "epoch"]
    out = frame.groupby(keys, sort=False).agg(**named).reset_index()
    out["frac_silent"] = out["frac_silent"].astype(np.float64)
    out["frac_saturated"] = out["frac_saturated"].astype(np.float64)
    return out.sort_values(["network", "epoch"], kind="stable").reset_index(drop=True)
