"""The per-input (cluster) sums of the fused CPU kernel, pinned against numpy by hand, and the
reducer's two paths (the fused kernel, torch) giving the same variables bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bayesactiv.data.contract import CLUSTER_VARS, LAYER_CLUSTER_VARS
from bayesactiv.recording import kernels as kernels_module
from bayesactiv.recording.reducer import LayerReducer
from bayesactiv.recording.rules import round_down_array

pytestmark = pytest.mark.skipif(kernels_module.compiled() is None, reason="needs numba")


def by_hand(a: np.ndarray, thr: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
    """The cluster and layer sums of one batch, input by input (empty inputs left out)."""
    u = a.shape[1]
    out = {name: np.zeros(u, np.int64) for name in CLUSTER_VARS}
    layer = np.zeros(3, np.int64)
    start = 0
    for t in lengths.tolist():
        c = (a[start : start + t] > thr).sum(0).astype(np.int64)
        start += t
        if t == 0:
            continue
        out["cluster_n"] += 1
        out["cluster_fired"] += c > 0
        out["cluster_count_sq"] += c * c
        out["cluster_count_n"] += c * t
        out["cluster_n_sq"] += t * t
        total = int(c.sum())
        layer += np.array([total * total, total * t, total], np.int64)
    out.update({name: np.full(u, layer[j], np.int64) for j, name in enumerate(LAYER_CLUSTER_VARS)})
    return out


def kernel_args(a: np.ndarray, thr: np.ndarray, block: int) -> list:
    e, u = a.shape
    nblocks = -(-u // block)
    return [a, thr, 0, max(e, 1), np.zeros((1, u), np.int64), np.empty(u, a.dtype),
            np.empty(u, a.dtype), np.zeros(u, np.int64), False, np.zeros((0, 0), np.bool_),
            False, np.zeros(u, np.int64), np.zeros((4, u)), np.zeros(u),
            np.full((0, u), -np.inf, a.dtype), np.full((0, u), -1, np.int64), 0,
            np.zeros((1, 8), np.int64), 0.0, 1.0, 8.0, np.zeros(nblocks, np.int64), block]


LENGTHS = [np.full(9, 7), np.array([5, 0, 12, 1, 0, 9, 3, 0, 33]), np.array([0, 0, 4, 0])]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lengths", LENGTHS, ids=["fixed", "variable", "mostly-empty"])
@pytest.mark.parametrize("kind", ["fused_serial", "fused", "python"])
def test_fused_kernel_cluster_sums_equal_numpy(dtype, lengths, kind):
    rng = np.random.default_rng(3)
    e, u, block = int(lengths.sum()), 45, 16
    a = rng.normal(size=(e, u)).astype(dtype)
    thr = (0.3 * rng.normal(size=u)).astype(dtype)
    has = lengths > 0
    ends, t = np.cumsum(lengths)[has], lengths[has].astype(np.int64)
    args = kernel_args(a, thr, block)
    per_unit = np.zeros((3, u), np.int64)
    ct = np.zeros((-(-u // block), t.shape[0]), np.int64)
    kern = (kernels_module._fused_kernel if kind == "python"
            else kernels_module.compiled()[kind])
    kern(*args, ends, t, per_unit, ct)
    want = by_hand(a, thr, lengths)
    np.testing.assert_array_equal(per_unit[0], want["cluster_fired"])
    np.testing.assert_array_equal(per_unit[1], want["cluster_count_sq"])
    np.testing.assert_array_equal(per_unit[2], want["cluster_count_n"])
    total = ct.sum(0)
    assert [(total * total).sum(), (total * t).sum(), total.sum()] == [
        want[name][0] for name in LAYER_CLUSTER_VARS]
    # the counts of the same pass are those of the kernel without the cluster outputs
    plain = kernel_args(a, thr, block)
    kern(*plain)
    np.testing.assert_array_equal(args[4], plain[4])
    np.testing.assert_array_equal((a > thr).sum(0), args[4][0])


def _record(batches, per_input, fused: bool, monkeypatch, summaries: bool = True) -> dict:
    with monkeypatch.context() as m:
        if not fused:
            m.setattr(kernels_module, "fast_path", lambda a: False)
        rec = LayerReducer(None, 20, True, summaries, 2, 8, None)
        rec.first(batches[0], 0.1)
        rec.kind = "token"
        for x, p in zip(batches, per_input, strict=True):
            rec.update(x, p)
    assert rec.fast == fused
    return rec.result(batches[0].shape[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("variable", [False, True])
def test_reducer_cluster_sums_are_numpys_and_the_torch_paths(dtype, variable, monkeypatch):
    gen = torch.Generator().manual_seed(4)
    if variable:
        per_input = [torch.tensor([3, 0, 5, 8, 0]), torch.tensor([0, 3, 0]),
                     torch.tensor([1, 12, 0, 2])]
    else:
        per_input = [4, 4, 4]
    sizes = [int(p.sum()) if torch.is_tensor(p) else 4 * 5 for p in per_input]
    batches = [torch.randn(n, 37, generator=gen, dtype=dtype) for n in sizes]
    fused = _record(batches, per_input, True, monkeypatch)
    plain = _record(batches, per_input, False, monkeypatch)
    lengths = np.concatenate([p.numpy() if torch.is_tensor(p) else np.full(5, p)
                              for p in per_input])
    a = torch.cat(batches).numpy()
    thr = round_down_array(np.full(37, 0.1), a.dtype)  # the Fixed rule's threshold
    want = by_hand(a, thr, lengths)
    for name in (*CLUSTER_VARS, *LAYER_CLUSTER_VARS):
        for got in (fused, plain):
            assert got[name].dtype == np.int64, name
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert set(fused) == set(plain)
    for name in ("count", "window_count", "fired", "act_zero", "hist_count"):
        np.testing.assert_array_equal(fused[name], plain[name], err_msg=name)


def test_reducer_falls_back_to_torch_for_a_per_input_that_does_not_fit(monkeypatch):
    rec = LayerReducer(None, None, False, False, 0, 2, None)
    a = torch.ones(6, 2)
    rec.first(a, 0.0)
    rec.kind = "per_position"
    with pytest.raises(RuntimeError):
        rec.update(a, 4)  # 6 events are not inputs of 4


def test_batches_the_kernel_leaves_to_torch_add_to_the_same_sums(monkeypatch):
    # (the kernel counts an input's events in int32; a larger input goes to torch's pass)
    gen = torch.Generator().manual_seed(5)
    per_input = [torch.tensor([4, 0, 6]), torch.tensor([2, 9]), torch.tensor([0, 5, 1])]
    batches = [torch.randn(int(p.sum()), 11, generator=gen) for p in per_input]
    rec = LayerReducer(None, None, False, False, 0, 2, None)
    rec.first(batches[0], 0.0)
    rec.kind = "token"
    real = rec._inputs
    kernel_does = iter([False, True, False])

    def inputs(e, p):
        return real(e, p) if next(kernel_does) else None

    monkeypatch.setattr(rec, "_inputs", inputs)
    for x, p in zip(batches, per_input, strict=True):
        rec.update(x, p)
    got = rec.result(11)
    want = by_hand(torch.cat(batches).numpy(), np.zeros(11, np.float32),
                   torch.cat(per_input).numpy())
    for name in (*CLUSTER_VARS, *LAYER_CLUSTER_VARS):
        assert got[name].dtype == np.int64, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
