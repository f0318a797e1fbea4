"""Descriptive statistics of raw activations and of firing (seeds 001 and 003).

Reads the streamed summaries a recording keeps (per unit ``act_min``, ``act_max``,
``act_mean``, ``act_var`` (ddof 0), ``act_skewness``, ``act_kurtosis`` (Fisher
excess), ``act_zero`` (events with activation exactly 0); per layer
``hist_count``/``hist_edges`` over ``hist_group`` = ``"network/layer"``;
``topk_sample``/``topk_value`` over (unit, rank)), the firing counts, and
``fired`` when it was kept. Per-unit results are indexed by ``unit``; aggregates
by ``group``, the groups of ``group_by`` (default ``("network", "layer")``, the
grouping ``fit`` uses) with coordinates ``group_network``, ``group_layer`` and,
when ``"epoch"`` is a key, ``group_epoch`` (see
:func:`bayesactiv.stats.baselines.group_layout`; ``"network/*"`` rows pool the layers of
a network).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from bayesactiv.data import DatasetError, require, validate
from bayesactiv.data.checks import ArgumentError, check_int, check_number
from bayesactiv.data.lazy import EventBlock, event_blocks, is_lazy, reduce_blocks
from bayesactiv.stats.groups import BY_LAYER, KEEP_EVENTS, group_layout, unit_frame

__all__ = [
    "activation_summary",
    "coactivation",
    "dead_saturated",
    "density",
    "ecdf",
    "histogram",
    "top_inputs",
    "zero_mode",
]

_SUMMARIES = "record(...) (it streams act_* summaries of every recorded layer)"
_HIST = "record(...) (it streams a per-layer histogram, hist_count/hist_edges)"
_TOPK = "record(..., topk=10) (it keeps the inputs of highest activation per unit)"


def _merge(a: xr.Dataset, b: xr.Dataset) -> xr.Dataset:
    return a.merge(b, compat="override", join="outer")


def activation_summary(
    ds: xr.Dataset, *, group_by: Sequence[str] | str | None = BY_LAYER
) -> xr.Dataset:
    r"""Per-unit and pooled per-layer moments of the raw activations.

    Per unit: ``min``, ``max``, ``range`` (max - min), ``mean``, ``var`` (ddof 0),
    ``std``, and, when recorded, ``skewness`` (:math:`g_1 = m_3/m_2^{3/2}`) and
    ``kurtosis`` (Fisher excess, :math:`g_2 = m_4/m_2^2 - 3`), :math:`m_k` the
    central moments over the unit's ``n`` events.

    Per group the moments of all activations of its units pooled, combined exactly
    from per-unit moments: with pooled mean :math:`\mu` and
    :math:`\delta_u = \mu_u - \mu`, the pooled central moments are the
    ``n``-weighted means of :math:`m_2 + \delta^2`,
    :math:`m_3 + 3\delta m_2 + \delta^3` and
    :math:`m_4 + 4\delta m_3 + 6\delta^2 m_2 + \delta^4`. Units with zero variance
    (whose own skewness is undefined) contribute :math:`m_3 = m_4 = 0`.

    Parameters
    ----------
    ds : xarray.Dataset
        Needs ``act_mean`` and ``act_var``; ``act_min``/``act_max`` and
        ``act_skewness``/``act_kurtosis`` are used when present.
    group_by : sequence of str or str
        Keys of the aggregate groups (see :func:`bayesactiv.stats.baselines.group_layout`).

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> ds = ba.make_dataset([1, 1], 2, network="n", layer="l")
    >>> ds["act_mean"] = ("unit", [0.0, 2.0]); ds["act_var"] = ("unit", [0.0, 0.0])
    >>> float(activation_summary(ds)["pooled_var"][0])  # values 0, 0, 2, 2
    1.0
    """
    validate(ds)
    require(ds, "act_mean", "the activation summary", _SUMMARIES)
    require(ds, "act_var", "the activation summary", _SUMMARIES)
    n = ds["n"].values.astype(np.float64)
    mean = ds["act_mean"].values.astype(np.float64)
    var = ds["act_var"].values.astype(np.float64)
    member, gcoords = group_layout(ds, group_by=group_by)
    out = _merge(unit_frame(ds), gcoords)
    if "act_min" in ds and "act_max" in ds:
        out["min"] = ("unit", ds["act_min"].values)
        out["max"] = ("unit", ds["act_max"].values)
        out["range"] = ("unit", ds["act_max"].values - ds["act_min"].values)
        out["pooled_min"] = ("group", np.where(member, ds["act_min"].values, np.inf).min(axis=1))
        out["pooled_max"] = ("group", np.where(member, ds["act_max"].values, -np.inf).max(axis=1))
    out["mean"] = ("unit", mean)
    out["var"] = ("unit", var)
    out["std"] = ("unit", np.sqrt(var))
    weights = member * n[None, :]
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = (weights @ mean) / total
        delta = mean[None, :] - mu[:, None]
        m2 = (weights * (var[None, :] + delta**2)).sum(axis=1) / total
    out["pooled_mean"] = ("group", mu)
    out["pooled_var"] = ("group", m2)
    if "act_skewness" in ds and "act_kurtosis" in ds:
        g1 = ds["act_skewness"].values.astype(np.float64)
        g2 = ds["act_kurtosis"].values.astype(np.float64)
        out["skewness"] = ("unit", g1)
        out["kurtosis"] = ("unit", g2)
        const = var <= 0
        u3 = np.where(const, 0.0, g1 * var**1.5)
        u4 = np.where(const, 0.0, (g2 + 3.0) * var**2)
        v = var[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            m3 = (weights * (u3 + 3 * delta * v + delta**3)).sum(axis=1) / total
            m4 = (weights * (u4 + 4 * delta * u3 + 6 * delta**2 * v + delta**4)).sum(axis=1) / total
            out["pooled_skewness"] = ("group", np.where(m2 > 0, m3 / m2**1.5, np.nan))
            out["pooled_kurtosis"] = ("group", np.where(m2 > 0, m4 / m2**2 - 3.0, np.nan))
    out.attrs.update(var_ddof=0, kurtosis="Fisher excess (normal = 0)")
    return out


def zero_mode(ds: xr.Dataset, *, group_by: Sequence[str] | str | None = BY_LAYER) -> xr.Dataset:
    """The mode at zero: the fraction of events whose activation is exactly 0.

    ``zero_fraction = act_zero / n`` per unit (for a ReLU unit the events where it
    was off); per group the pooled fraction ``sum act_zero / sum n``.

    Parameters
    ----------
    ds : xarray.Dataset
        Needs ``act_zero``.
    group_by : sequence of str or str
        Keys of the aggregate groups (see :func:`bayesactiv.stats.baselines.group_layout`).

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([3, 1], 4, network="n", layer="l")
    >>> ds["act_zero"] = ("unit", [1, 3])
    >>> zero_mode(ds)["zero_fraction"].values.tolist()
    [0.25, 0.75]
    """
    validate(ds)
    require(ds, "act_zero", "the fraction of exact zeros", _SUMMARIES)
    zeros = ds["act_zero"].values.astype(np.float64)
    n = ds["n"].values.astype(np.float64)
    member, gcoords = group_layout(ds, group_by=group_by)
    out = _merge(unit_frame(ds), gcoords)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["zero_fraction"] = ("unit", np.where(n > 0, zeros / n, np.nan))
        out["group_zero_fraction"] = ("group", (member @ zeros) / (member @ n))
    return out


def dead_saturated(
    ds: xr.Dataset, *, group_by: Sequence[str] | str | None = BY_LAYER
) -> xr.Dataset:
    """Dead units (never fired: ``count == 0``) and saturated units (always: ``count == n``).

    Returns per unit the booleans ``dead`` and ``saturated``; per group the
    counts ``n_dead``, ``n_saturated``, ``n_units`` and the fractions
    ``dead_fraction``, ``saturated_fraction``. "Never" means over the recording:
    a unit dead on these ``n`` inputs may fire on others (the Bayesian model
    says how likely).

    Parameters
    ----------
    ds : xarray.Dataset
    group_by : sequence of str or str
        Keys of the aggregate groups (see :func:`bayesactiv.stats.baselines.group_layout`).

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import bayesactiv as ba
    >>> d = dead_saturated(ba.make_dataset([0, 3, 5, 5], 5, network="n", layer="l"))
    >>> d["dead_fraction"].values.tolist(), d["saturated_fraction"].values.tolist()
    ([0.25, 0.25], [0.5, 0.5])
    """
    validate(ds)
    count = ds["count"].values
    n = ds["n"].values
    dead = (count == 0) & (n > 0)
    sat = (count == n) & (n > 0)
    member, gcoords = group_layout(ds, group_by=group_by)
    out = _merge(unit_frame(ds), gcoords)
    k = member.sum(axis=1)
    out["dead"] = ("unit", dead)
    out["saturated"] = ("unit", sat)
    out["n_units"] = ("group", k)
    out["n_dead"] = ("group", member @ dead.astype(np.int64))
    out["n_saturated"] = ("group", member @ sat.astype(np.int64))
    out["dead_fraction"] = ("group", out["n_dead"].values / k)
    out["saturated_fraction"] = ("group", out["n_saturated"].values / k)
    return out


def histogram(ds: xr.Dataset) -> xr.Dataset:
    """The per-layer histogram of raw activations, with bin centres, widths and density.

    ``density = count / (total * width)`` integrates to 1 over the bins.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> ds = ba.make_dataset([1], 4, network="n", layer="l")
    >>> ds["hist_count"] = (("hist_group", "hist_bin"), [[3, 1]])
    >>> ds["hist_edges"] = (("hist_group", "hist_edge"), [[0.0, 1.0, 2.0]])
    >>> ds = ds.assign_coords(hist_group=["n/l"])
    >>> histogram(ds)["density"].values.tolist()
    [[0.75, 0.25]]
    """
    validate(ds)
    require(ds, "hist_count", "the activation histogram", _HIST)
    require(ds, "hist_edges", "the activation histogram", _HIST)
    counts = ds["hist_count"].values.astype(np.float64)
    edges = ds["hist_edges"].values.astype(np.float64)
    if edges.shape[1] != counts.shape[1] + 1:
        raise DatasetError(
            f"hist_edges: expected {counts.shape[1] + 1} edges per group for "
            f"{counts.shape[1]} bins, got {edges.shape[1]}"
        )
    width = np.diff(edges, axis=1)
    if (width <= 0).any():
        raise DatasetError("hist_edges: edges must increase strictly within each group")
    total = counts.sum(axis=1, keepdims=True)
    out = xr.Dataset(coords={"hist_group": ds["hist_group"].values if "hist_group" in ds.coords
                             else np.arange(counts.shape[0])})
    out["count"] = (("hist_group", "hist_bin"), counts.astype(np.int64))
    out["edges"] = (("hist_group", "hist_edge"), edges)
    out["center"] = (("hist_group", "hist_bin"), (edges[:, 1:] + edges[:, :-1]) / 2)
    out["width"] = (("hist_group", "hist_bin"), width)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["density"] = (("hist_group", "hist_bin"), counts / (total * width))
    out["total"] = ("hist_group", total[:, 0].astype(np.int64))
    return out


def ecdf(ds: xr.Dataset) -> xr.Dataset:
    """Empirical CDF of each layer's activations at the histogram edges.

    ``cdf[g, j]`` is the fraction of activations below edge ``j`` (0 at the first
    edge, 1 at the last); exact at the edges, linear between them when plotted.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([1], 4, network="n", layer="l")
    >>> ds["hist_count"] = (("hist_group", "hist_bin"), [[3, 1]])
    >>> ds["hist_edges"] = (("hist_group", "hist_edge"), [[0.0, 1.0, 2.0]])
    >>> ecdf(ds.assign_coords(hist_group=["n/l"]))["cdf"].values.tolist()
    [[0.0, 0.75, 1.0]]
    """
    h = histogram(ds)
    cum = np.cumsum(h["count"].values, axis=1)
    total = h["total"].values[:, None].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cdf = np.concatenate([np.zeros((cum.shape[0], 1)), cum / total], axis=1)
    out = xr.Dataset(coords={"hist_group": h["hist_group"]})
    out["edges"] = h["edges"]
    out["cdf"] = (("hist_group", "hist_edge"), cdf)
    return out


def _hist_quantile(edges: np.ndarray, cdf: np.ndarray, q: float) -> float:
    return float(np.interp(q, cdf, edges))


def density(ds: xr.Dataset, bandwidth: float | None = None, n_grid: int = 200) -> xr.Dataset:
    r"""Kernel density estimate of each layer's activations, from its histogram.

    A binned Gaussian KDE: every bin's count sits at its centre and is smoothed
    with a Gaussian kernel of standard deviation ``h``,
    :math:`\hat f(x) = \sum_i c_i \phi((x - x_i)/h) / (h \sum_i c_i)`.
    Default bandwidth: Silverman's rule
    :math:`h = 0.9 \min(s, \mathrm{IQR}/1.349)\, N^{-1/5}` from the histogram's
    standard deviation ``s``, interquartile range and total count ``N``; floored at
    half the median bin width (smoothing below the binning resolution means
    nothing). ReLU activations have a point mass at 0: the KDE smears it over about
    ``h``; read :func:`zero_mode` for it.

    Parameters
    ----------
    ds : xarray.Dataset
        Needs ``hist_count`` and ``hist_edges``.
    bandwidth : float, optional
        The same ``h`` (> 0) for every group; default per group as above.
    n_grid : int
        Points of the evaluation grid (>= 2, between the first and last edge).

    Returns
    -------
    xarray.Dataset
        ``density`` and ``x`` over (``hist_group``, ``grid``), ``bandwidth`` over
        ``hist_group``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> ds = ba.make_dataset([1], 4, network="n", layer="l")
    >>> ds["hist_count"] = (("hist_group", "hist_bin"), [[1, 2, 1]])
    >>> ds["hist_edges"] = (("hist_group", "hist_edge"), [[0.0, 1.0, 2.0, 3.0]])
    >>> kde = density(ds.assign_coords(hist_group=["n/l"]), bandwidth=0.5)
    >>> float(kde["bandwidth"][0])
    0.5
    """
    if bandwidth is not None:
        bandwidth = check_number(bandwidth, "bandwidth", minimum=0, exclusive=True)
    n_grid = check_int(n_grid, "n_grid", minimum=2)
    h = histogram(ds)
    c = h["count"].values.astype(np.float64)
    x = h["center"].values
    edges = h["edges"].values
    cdf = ecdf(ds)["cdf"].values
    groups = c.shape[0]
    grid = np.linspace(edges[:, 0], edges[:, -1], n_grid, axis=1)
    dens = np.full_like(grid, np.nan)
    bws = np.full(groups, np.nan)
    for g in range(groups):  # a handful of layers; the work inside is vectorized
        total = c[g].sum()
        if total <= 0:
            continue
        if bandwidth is None:
            mean = (c[g] * x[g]).sum() / total
            sd = np.sqrt((c[g] * (x[g] - mean) ** 2).sum() / total)
            iqr = _hist_quantile(edges[g], cdf[g], 0.75) - _hist_quantile(edges[g], cdf[g], 0.25)
            spread = min(sd, iqr / 1.349) if iqr > 0 else sd
            bw = max(0.9 * spread * total ** (-0.2), 0.5 * float(np.median(h["width"].values[g])))
        else:
            bw = bandwidth
        bws[g] = bw
        z = (grid[g][:, None] - x[g][None, :]) / bw
        dens[g] = (np.exp(-0.5 * z**2) @ c[g]) / (bw * np.sqrt(2 * np.pi) * total)
    out = xr.Dataset(coords={"hist_group": h["hist_group"]})
    out["x"] = (("hist_group", "grid"), grid)
    out["density"] = (("hist_group", "grid"), dens)
    out["bandwidth"] = ("hist_group", bws)
    out.attrs["kernel"] = "gaussian, on bin centres"
    return out


def coactivation(ds: xr.Dataset, layer: str, network: str | None = None) -> xr.DataArray:
    r"""Co-activation of the units of one layer: the phi coefficient of their firing.

    For units ``i``, ``j`` with counts :math:`c_i, c_j`, joint count :math:`c_{ij}`
    over ``n`` samples,
    :math:`\phi_{ij} = (n c_{ij} - c_i c_j)/\sqrt{c_i(n-c_i)c_j(n-c_j)}` (the Pearson
    correlation of the binary firing indicators); NaN for a unit that never or
    always fired (constant).

    A dask-backed ``fired`` (events out of core) is read one block of events at a time:
    the joint counts :math:`c_{ij}` and the counts :math:`c_i` add over blocks
    (:func:`bayesactiv.data.lazy.reduce_blocks`), and are the same integers as in memory.

    Parameters
    ----------
    ds : xarray.Dataset
        Needs ``fired``.
    layer : str
    network : str, optional
        Needed when several networks have a layer of that name.

    Returns
    -------
    xarray.DataArray
        Dims (``unit``, ``unit_other``).

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.array([[1, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0]], bool)
    >>> ds = ba.make_dataset(f.sum(0), 4, network="n", layer="l", fired=f)
    >>> coactivation(ds, "l").values[0].tolist()
    [1.0, 1.0, 0.0]
    """
    validate(ds)
    require(ds, "fired", "the co-activation matrix", KEEP_EVENTS)
    lay = ds["layer"].values.astype(str)
    net = ds["network"].values.astype(str)
    mask = lay == str(layer)
    if not mask.any():
        raise ArgumentError(f"layer: no units in layer {layer!r}; layers are {sorted(set(lay))}")
    nets = sorted(set(net[mask]))
    if network is None:
        if len(nets) > 1:
            raise ArgumentError(f"network: layer {layer!r} exists in networks {nets}; pass network=")
    else:
        mask &= net == str(network)
        if not mask.any():
            raise ArgumentError(f"network: no layer {layer!r} in network {network!r}")
    sub = ds.isel(unit=np.flatnonzero(mask))
    n = float(sub.sizes["sample"])
    if is_lazy(sub):
        blocks = event_blocks(sub.drop_vars("input", errors="ignore"))
        totals = reduce_blocks(sub, _block_coactivation, blocks=blocks)
        joint, c = totals[:-1], totals[-1]
    else:
        joint, c = _joint_counts(sub["fired"].values)
    spread = c * (n - c)
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = (n * joint - np.outer(c, c)) / np.sqrt(np.outer(spread, spread))
    phi = np.where(np.outer(spread > 0, spread > 0), phi, np.nan)
    ids = sub["unit"].values
    return xr.DataArray(
        phi,
        dims=("unit", "unit_other"),
        coords={"unit": ids, "unit_other": ids.copy(), "index": ("unit", sub["index"].values)},
        name="phi",
        attrs={"layer": str(layer), "network": str(net[mask][0])},
    )


def _joint_counts(fired: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fired^T fired`` (unit, unit) and ``fired.sum(0)``, both exact integers as float64."""
    ftype = np.float32 if fired.shape[0] < 2**24 else np.float64  # exact integer sums
    f = fired.astype(ftype)
    return (f.T @ f).astype(np.float64), fired.sum(axis=0).astype(np.float64)


def _block_coactivation(block: EventBlock, events: np.ndarray) -> np.ndarray:
    """Joint counts of one block's events, with their counts as the last row (unit + 1, unit)."""
    joint, c = _joint_counts(events)
    return np.vstack([joint, c[None, :]])


def top_inputs(ds: xr.Dataset, unit: str | int) -> xr.Dataset:
    """The inputs that made a unit fire most, from the recording's top-k.

    Parameters
    ----------
    ds : xarray.Dataset
        Needs ``topk_sample`` and ``topk_value``.
    unit : str or int
        A unit id (``"network/layer/index"``) or a position along ``unit``.

    Returns
    -------
    xarray.Dataset
        Over ``rank`` (highest activation first, unused ranks dropped): ``sample``
        (the event index), ``value`` (its activation) and ``label`` / ``input``
        when the dataset has those coordinates on ``sample``.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([2], 5, network="n", layer="l")
    >>> ds["topk_sample"] = (("unit", "rank"), [[3, 1, -1]])
    >>> ds["topk_value"] = (("unit", "rank"), [[2.5, 0.5, 0.0]])
    >>> top_inputs(ds, "n/l/0")["sample"].values.tolist()
    [3, 1]
    """
    validate(ds)
    require(ds, "topk_sample", "the top inputs of a unit", _TOPK)
    require(ds, "topk_value", "the top inputs of a unit", _TOPK)
    ids = ds["unit"].values.astype(str)
    if isinstance(unit, (int, np.integer)):
        if not -len(ids) <= int(unit) < len(ids):
            raise ArgumentError(f"unit: position {unit} out of range for {len(ids)} units")
        pos = int(unit)
    else:
        hits = np.flatnonzero(ids == str(unit))
        if hits.size == 0:
            raise ArgumentError(f"unit: no unit {unit!r} in the dataset (ids look like {ids[0]!r})")
        pos = int(hits[0])
    samples = ds["topk_sample"].values[pos]
    values = ds["topk_value"].values[pos]
    keep = samples >= 0
    order = np.argsort(-values[keep], kind="stable")
    rank = np.flatnonzero(keep)[order]
    out = xr.Dataset(coords={"rank": np.arange(rank.size)})
    out["sample"] = ("rank", samples[rank])
    out["value"] = ("rank", values[rank])
    for name in ("label", "input"):
        if name in ds.coords and ds[name].dims == ("sample",):
            out[name] = ("rank", ds[name].values[samples[rank]])
    out.attrs["unit"] = ids[pos]
    return out

