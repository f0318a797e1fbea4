"""Event statistics on a dask-backed ``fired`` (events out of core) equal the in-memory ones.

Every statistic that reads ``fired`` is run on the same events in memory and chunked
along ``sample`` (one chunk, even chunks, uneven chunks whose boundaries fall inside
inputs and inside windows), and the lazy result must equal the in-memory one: exactly
for the integer sums (co-activation, cluster sums, design effects, curves, window
counts, permutation tests with the same seed) and to float rounding for the moments of
the inter-spike intervals. A spy on dask's materialisation of arrays checks that no
(sample x unit) array of all events is ever built.
"""

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import bayesactiv as ba
from bayesactiv.bayes.calibration import token_dataset
from bayesactiv.data import DatasetError
from bayesactiv.data.lazy import is_lazy
from bayesactiv.stats import baselines as bl
from bayesactiv.stats import spikes
from bayesactiv.stats.descriptive import coactivation
from bayesactiv.stats.intervals import (
    cluster_sums,
    cluster_variances,
    design_effect,
    intervals,
    monte_carlo,
    monte_carlo_curve,
)
from bayesactiv.stats.spikes import cluster_fano, fano_factor, isi_cv, order_permutation_test

WINDOW = 13  # divides none of the chunk sizes below: windows straddle chunk boundaries


def _dense(seed=0, n=401, k=9):
    """MLP-like events: per-unit rates from dead to always, some bursts."""
    rng = np.random.default_rng(seed)
    rate = np.r_[0.0, 1.0, 1.0 / n, rng.uniform(0.02, 0.7, k - 3)]
    fired = rng.random((n, k)) < rate
    fired[100:140, 3] = True  # a burst
    fired[-1, 2] = True
    m = n // WINDOW
    wc = fired[: m * WINDOW].reshape(m, WINDOW, k).sum(axis=1)
    return ba.make_dataset(fired.sum(0), n, network="net", layer=["a"] * 5 + ["b"] * (k - 5),
                           fired=fired, window_count=wc, window_size=WINDOW)


def _tokens(seed=1, n_inputs=37, k=7):
    """Clustered tokens, inputs of unequal length, per-input propensities."""
    rng = np.random.default_rng(seed)
    t = rng.integers(1, 12, n_inputs)
    t[0] = 9
    p = rng.beta(0.5, 1.5, (n_inputs, k))
    idx = np.repeat(np.arange(n_inputs), t)
    fired = rng.random((idx.size, k)) < p[idx]
    fired[:, 0] = False  # never fires
    m = idx.size // WINDOW
    wc = fired[: m * WINDOW].reshape(m, WINDOW, k).sum(axis=1)
    ds = ba.make_dataset(fired.sum(0), idx.size, network="lm", layer="mlp", fired=fired,
                         window_count=wc, window_size=WINDOW, attrs={"spatial": "token"})
    return ds.assign_coords(input=("sample", 1000 + idx))


def _token_calibration():
    """Tokens of :func:`token_dataset` (each input's firing tokens first), inputs of 1 to 8."""
    rng = np.random.default_rng(2)
    t = rng.integers(1, 9, 30)
    c = rng.integers(0, t[:, None] + 1, (30, 5))
    return token_dataset(c, t)


def _chunkings(n):
    """One chunk, even chunks, and uneven chunks (ones of a single event among them)."""
    uneven = (1, 7, 30, 1, 64)
    rest = n - sum(uneven)
    return [{"sample": n}, {"sample": 50}, {"sample": uneven + (rest // 2, rest - rest // 2)}]


def _lazy(ds, chunks):
    """``ds`` with only ``fired`` out of core (a dask array chunked along ``sample``)."""
    return ds.assign(fired=ds["fired"].chunk(chunks))


DATASETS = {"dense": _dense, "tokens": _tokens, "calibration": _token_calibration}


@pytest.fixture(params=sorted(DATASETS))
def data(request):
    return DATASETS[request.param]()


@pytest.fixture
def no_full_events(monkeypatch):
    """Fail on any materialisation of more than one chunk's events of ``fired``.

    Every dask array turned into numpy (``.values``, ``.load()``, ``.compute()``,
    ``np.asarray``, a block handed to a task) goes through ``__dask_postcompute__``; the
    spy records the rows of every 2-d array (sample x unit) materialised.
    """
    rows = []
    original = da.Array.__dask_postcompute__

    def spy(self):
        if self.ndim == 2:
            rows.append(self.shape[0])
        return original(self)

    monkeypatch.setattr(da.Array, "__dask_postcompute__", spy)
    return rows


def _assert_blockwise(rows, lazy):
    """Something was read block by block, and no piece held all events (or more than a block)."""
    n = lazy.sizes["sample"]
    chunks = lazy["fired"].chunks[0]
    assert rows, "no events were read"
    if len(chunks) > 1:
        assert max(rows) < n
    # a block of whole inputs is at most a chunk plus the inputs it had to take whole
    longest = np.bincount(np.unique(lazy["input"].values, return_inverse=True)[1]).max() \
        if "input" in lazy.coords else 1
    assert max(rows) <= max(chunks) + longest


def _equal(a, b):
    """Two results of a statistic, equal in every variable, coordinate and attribute."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        return
    if isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
        return
    xr.testing.assert_identical(a, b)


# ----------------------------------------------------------------------------- the spy


def test_the_spy_fails_when_fired_is_read_whole(no_full_events):
    lazy = _lazy(_dense(), {"sample": 50})
    loaded = lazy["fired"].values  # what a statistic that loads all events would do
    assert loaded.shape == (401, 9)
    with pytest.raises(AssertionError):
        _assert_blockwise(no_full_events, lazy)


def test_a_wholly_chunked_dataset_gives_the_same_numbers():
    data = _tokens()
    lazy = data.chunk({"sample": 50})  # every variable a dask array
    assert is_lazy(lazy) and not is_lazy(data)
    xr.testing.assert_identical(cluster_fano(lazy), cluster_fano(data))
    xr.testing.assert_identical(monte_carlo_curve(lazy), monte_carlo_curve(data))
    xr.testing.assert_identical(coactivation(lazy, "mlp"), coactivation(data, "mlp"))
    _isi_equal(isi_cv(lazy), isi_cv(data))


# ----------------------------------------------------------------------------- exact sums


@pytest.mark.parametrize("chunking", range(3))
def test_coactivation_lazy_equals_in_memory(data, chunking, no_full_events):
    lazy = _lazy(data, _chunkings(data.sizes["sample"])[chunking])
    for network, layer in {(str(a), str(b)) for a, b in zip(data["network"].values,
                                                               data["layer"].values)}:
        expected = coactivation(data, layer, network)
        got = coactivation(lazy, layer, network)
        xr.testing.assert_identical(got, expected)
    _assert_blockwise(no_full_events, lazy)


@pytest.mark.parametrize("chunking", range(3))
def test_cluster_sums_and_design_effects_lazy_equal_in_memory(data, chunking, no_full_events):
    lazy = _lazy(data, _chunkings(data.sizes["sample"])[chunking])
    sums = cluster_sums(data)
    if sums is None:  # dense: nothing is clustered, and nothing needs reading
        assert cluster_sums(lazy) is None
        assert cluster_variances(lazy) is None
        return
    _equal(cluster_sums(lazy), sums)
    _equal(cluster_variances(lazy), cluster_variances(data))
    _equal(design_effect(lazy), design_effect(data))
    _assert_blockwise(no_full_events, lazy)


@pytest.mark.parametrize("chunking", range(3))
def test_monte_carlo_and_intervals_lazy_equal_in_memory(data, chunking, no_full_events):
    lazy = _lazy(data, _chunkings(data.sizes["sample"])[chunking])
    for robust in (True, False):
        xr.testing.assert_identical(monte_carlo(lazy, cluster_robust=robust),
                                    monte_carlo(data, cluster_robust=robust))
        for method in ("wald", "jeffreys"):
            xr.testing.assert_identical(intervals(lazy, method, cluster_robust=robust),
                                        intervals(data, method, cluster_robust=robust))
    if cluster_sums(data) is not None:  # clustered: the design effects read the events
        _assert_blockwise(no_full_events, lazy)
    else:  # dense: count and n suffice, nothing is read
        assert not no_full_events


@pytest.mark.parametrize("chunking", range(3))
@pytest.mark.parametrize("robust", [True, False])
def test_monte_carlo_curve_lazy_equals_in_memory(data, chunking, robust, no_full_events):
    lazy = _lazy(data, _chunkings(data.sizes["sample"])[chunking])
    for n_points in (5, 40, 1000):  # grids coarser and finer than the blocks
        expected = monte_carlo_curve(data, n_points, cluster_robust=robust)
        got = monte_carlo_curve(lazy, n_points, cluster_robust=robust)
        xr.testing.assert_identical(got, expected)
    _assert_blockwise(no_full_events, lazy)


def test_monte_carlo_curve_lazy_hits_every_input_boundary():
    data = _tokens(seed=4, n_inputs=12)
    lazy = _lazy(data, {"sample": 5})  # chunks far smaller than some inputs
    curve = monte_carlo_curve(lazy, 100)
    assert curve["n_inputs"].values.tolist() == list(range(1, 13))
    xr.testing.assert_identical(curve, monte_carlo_curve(data, 100))


@pytest.mark.parametrize("chunking", range(3))
def test_fano_factor_and_cluster_fano_lazy_equal_in_memory(data, chunking, no_full_events):
    lazy = _lazy(data, _chunkings(data.sizes["sample"])[chunking])
    xr.testing.assert_identical(cluster_fano(lazy), cluster_fano(data))
    if "window_count" in data.data_vars:
        xr.testing.assert_identical(fano_factor(lazy), fano_factor(data))
    if cluster_sums(data) is not None:
        _assert_blockwise(no_full_events, lazy)


# ----------------------------------------------------------------------------- spike trains


def _isi_equal(got, expected):
    assert set(got.data_vars) == set(expected.data_vars)
    for name in expected.data_vars:
        np.testing.assert_allclose(got[name].values, expected[name].values, rtol=1e-12,
                                   atol=0, equal_nan=True, err_msg=name)
    assert got.attrs == expected.attrs


@pytest.mark.parametrize("chunking", range(3))
@pytest.mark.parametrize("ddof", [0, 1])
def test_isi_cv_lazy_equals_in_memory(data, chunking, ddof, no_full_events):
    lazy = _lazy(data, _chunkings(data.sizes["sample"])[chunking])
    expected = isi_cv(data, ddof=ddof)
    got = isi_cv(lazy, ddof=ddof)
    _isi_equal(got, expected)
    np.testing.assert_array_equal(got["isi_mean"].values, expected["isi_mean"].values)
    np.testing.assert_array_equal(np.isnan(got["isi_cv"].values), np.isnan(expected["isi_cv"]))
    _assert_blockwise(no_full_events, lazy)


def test_isi_cv_lazy_joins_trains_across_silent_blocks():
    # unit 0 spikes at both ends only, unit 1 once per chunk, unit 2 in one chunk only
    fired = np.zeros((60, 4), dtype=bool)
    fired[[0, 59], 0] = True
    fired[[3, 14, 27, 31, 48], 1] = True
    fired[[21, 22, 24], 2] = True
    fired[[9], 3] = True
    ds = ba.make_dataset(fired.sum(0), 60, network="n", layer="l", fired=fired)
    for chunks in ({"sample": 10}, {"sample": (1, 2, 20, 37)}, {"sample": 1}):
        got = isi_cv(_lazy(ds, chunks))
        _isi_equal(got, isi_cv(ds))
        assert got["isi_mean"].values[0] == 59.0
        assert np.isnan(got["isi_cv"].values[3])


def test_spike_stats_lazy_equals_in_memory(no_full_events):
    data = _dense()
    lazy = _lazy(data, {"sample": (100, 1, 200, 100)})
    expected = bl.spike_stats(data)
    got = bl.spike_stats(lazy)
    assert got.attrs == expected.attrs
    _isi_equal(got, expected)
    _assert_blockwise(no_full_events, lazy)


def test_isi_cv_of_a_recorded_network_lazy_equals_in_memory():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8),
                              torch.nn.ReLU())
    inputs = torch.randn(300, 4)
    ds = ba.record(net, inputs, ["1", "3"], keep_events=True, window_size=16, progress=False)
    lazy = _lazy(ds, {"sample": (64, 1, 100, 135)})
    _isi_equal(isi_cv(lazy), isi_cv(ds))
    xr.testing.assert_identical(monte_carlo_curve(lazy), monte_carlo_curve(ds))
    t = {"window_size": 16, "seed": 1, "batch": 9}
    xr.testing.assert_identical(order_permutation_test(lazy, 30, **t),
                                order_permutation_test(ds, 30, **t))
    for layer in sorted(set(ds["layer"].values.astype(str))):
        xr.testing.assert_identical(coactivation(lazy, layer), coactivation(ds, layer))


# ----------------------------------------------------------------------------- permutations


@pytest.mark.parametrize("chunking", range(3))
@pytest.mark.parametrize("permute", ["auto", "events"])
def test_order_permutation_test_lazy_equals_in_memory(data, chunking, permute, no_full_events):
    lazy = _lazy(data, _chunkings(data.sizes["sample"])[chunking])
    for batch in (7, None):
        kwargs = {"window_size": WINDOW, "permute": permute, "seed": 3, "batch": batch}
        expected = order_permutation_test(data, 40, **kwargs)
        got = order_permutation_test(lazy, 40, **kwargs)
        xr.testing.assert_identical(got, expected)
    _assert_blockwise(no_full_events, lazy)


def test_order_permutation_test_lazy_finds_the_burst():
    data = _dense()
    t = order_permutation_test(_lazy(data, {"sample": 33}), 199, window_size=20, seed=0)
    assert t["p_value"].values[3] == pytest.approx(0.01)
    assert np.isnan(t["p_value"].values[0])  # never fired


# ----------------------------------------------------------------------------- refusals


def test_lazy_inputs_out_of_order_are_refused_with_the_alternative():
    data = _tokens()
    codes = data["input"].values.copy()
    shuffled = data.assign_coords(input=("sample", np.r_[codes[5:], codes[:5]]))
    # the first input's events are now at both ends: not consecutive
    assert shuffled["input"].values[0] == shuffled["input"].values[-1]
    lazy = _lazy(shuffled, {"sample": 50})
    with pytest.raises(DatasetError, match=r"\.load\(\)"):
        cluster_sums(lazy)
    with pytest.raises(DatasetError, match=r"\.load\(\)"):
        monte_carlo_curve(lazy)
    # statistics of single events do not need whole inputs
    xr.testing.assert_identical(coactivation(lazy, "mlp"), coactivation(shuffled, "mlp"))
    _isi_equal(isi_cv(lazy), isi_cv(shuffled))


def test_blocks_handled_in_groups_of_units_give_the_same_numbers(monkeypatch):
    data = _dense(seed=5, n=300, k=11)
    lazy = _lazy(data, {"sample": (90, 1, 209)})
    monkeypatch.setattr(spikes, "_GROUP_CELLS", 200)  # groups of one or two units
    assert len(spikes._unit_groups(90, 11)) == 6
    _isi_equal(isi_cv(lazy), isi_cv(data))
    kwargs = {"window_size": WINDOW, "seed": 4, "batch": 3}
    xr.testing.assert_identical(order_permutation_test(lazy, 10, **kwargs),
                                order_permutation_test(data, 10, **kwargs))
