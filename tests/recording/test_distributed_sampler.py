"""record under torch.distributed with a DataLoader driven by a DistributedSampler: two gloo
processes each pass their own loader, and every rank gets the dataset one process records
of the inputs in the order rank-major merging implies (rank 0's sampler indices first).

Also pinned: what an uneven number of inputs does. A sampler with ``drop_last=False`` pads
the ranks to equal shares by repeating inputs, and the recording counts those inputs twice
(``n`` is the padded total); when a padded share is not a whole number of windows, the ranks'
datasets do not merge and every rank raises. With ``drop_last=True`` the inputs left over
are not recorded at all.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import bayesactiv as ba

# the network, the inputs and the samplers, shared by the ranks and the reference
CASE = textwrap.dedent('''
    import torch
    from torch import nn
    from torch.utils.data import DistributedSampler, TensorDataset

    import bayesactiv as ba


    def network():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())


    def inputs(n):
        x = torch.randn(n, 12, generator=torch.Generator().manual_seed(1))
        return TensorDataset(x, torch.arange(n) % 3)


    def sampler(dataset, rank, world, shuffle=False, drop_last=False, epoch=None):
        chosen = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle,
                                    seed=7, drop_last=drop_last)
        if epoch is not None:
            chosen.set_epoch(epoch)
        return chosen


    # name: (inputs, sampler options, record options); the ranks' loaders give batches of 6
    CASES = {
        "ordered": (40, {}, {"window_size": 5}),
        "shuffled": (40, {"shuffle": True, "epoch": 3},
                     {"window_size": 5, "threshold": ba.Quantile(0.8)}),
        "padded": (41, {}, {"window_size": 7}),
        "padded_open_window": (41, {}, {"window_size": 10}),
        "dropped": (41, {"drop_last": True}, {"window_size": 10}),
    }
    COMMON = {"keep_events": True, "progress": False, "hist_range": (0.0, 5.0)}
    LAYERS = ["1", "3"]
''')

WORKER = textwrap.dedent('''
    import sys
    import torch.distributed as dist
    from torch.utils.data import DataLoader
    import bayesactiv as ba
    import sampler_case
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    out = sys.argv[1]
    for name, (n, sampler_options, options) in sampler_case.CASES.items():
        dataset = sampler_case.inputs(n)
        loader = DataLoader(dataset, batch_size=6,
                            sampler=sampler_case.sampler(dataset, rank, world, **sampler_options))
        try:
            ds = ba.record(sampler_case.network(), loader, sampler_case.LAYERS,
                           **sampler_case.COMMON, **options)
        except ba.data.DatasetError as err:
            with open(f"{out}/{name}{rank}.err", "w") as handle:
                handle.write(str(err))
        else:
            ba.save(ds, f"{out}/{name}{rank}.nc")
    dist.destroy_process_group()
''')


def _case(folder):
    spec = importlib.util.spec_from_file_location("sampler_case", folder / "sampler_case.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("sampler")
    (out / "sampler_case.py").write_text(CASE)
    (out / "worker.py").write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(out), *filter(None, [os.environ.get("PYTHONPATH")])])}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node", "2", str(out / "worker.py"), str(out)],
                   check=True, capture_output=True, timeout=600, env=env)
    return out


def _rank_major_order(case, name: str) -> list[int]:
    """The inputs' indices as the two ranks' samplers give them, rank 0's first."""
    n, sampler_options, _ = case.CASES[name]
    dataset = case.inputs(n)
    return [int(i) for rank in (0, 1)
            for i in iter(case.sampler(dataset, rank, 2, **sampler_options))]


def _one_process(case, name: str, order: list[int]):
    """One process recording the inputs in ``order`` (labels alongside)."""
    n, _, options = case.CASES[name]
    x, y = case.inputs(n).tensors
    index = torch.tensor(order)
    return ba.record(case.network(), x[index], case.LAYERS, labels=y[index].numpy(),
                     batch_size=6, **case.COMMON, **options)


def _assert_same_recording(got, want) -> None:
    for name in ("count", "n", "window_count", "fired", "label", "threshold", "act_zero",
                 "act_min", "act_max", "topk_value", "topk_sample", "hist_count", "hist_edges"):
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    for name in ("act_mean", "act_var", "act_skewness", "act_kurtosis"):
        np.testing.assert_allclose(got[name].values, want[name].values, rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_each_rank_takes_every_second_input_and_returns_all_in_rank_order(ranks):
    case = _case(ranks)
    order = _rank_major_order(case, "ordered")
    assert order == [*range(0, 40, 2), *range(1, 40, 2)]
    want = _one_process(case, "ordered", order)
    assert int(want["n"][0]) == 40 and want.sizes["window"] == 8
    for rank in (0, 1):
        _assert_same_recording(ba.open_dataset(ranks / f"ordered{rank}.nc"), want)


def test_a_shuffled_sampler_is_recorded_in_its_permutation(ranks):
    case = _case(ranks)
    order = _rank_major_order(case, "shuffled")
    assert sorted(order) == list(range(40))
    assert order != _rank_major_order(case, "ordered")  # the sampler did shuffle
    want = _one_process(case, "shuffled", order)
    for rank in (0, 1):
        _assert_same_recording(ba.open_dataset(ranks / f"shuffled{rank}.nc"), want)
    unshuffled = _one_process(case, "shuffled", _rank_major_order(case, "ordered"))
    got = ba.open_dataset(ranks / "shuffled0.nc")
    assert not np.array_equal(got["label"].values, unshuffled["label"].values)


def test_padding_inputs_are_recorded_twice(ranks):
    # 41 inputs on 2 ranks: the sampler repeats input 0 to give each rank 21
    case = _case(ranks)
    order = _rank_major_order(case, "padded")
    assert order == [*range(0, 41, 2), *range(1, 41, 2), 0]
    want = _one_process(case, "padded", order)
    for rank in (0, 1):
        got = ba.open_dataset(ranks / f"padded{rank}.nc")
        assert set(got["n"].values.tolist()) == {42}  # the padded total, not 41
        assert got.sizes["sample"] == 42 and got.sizes["window"] == 6
        _assert_same_recording(got, want)
    got = ba.open_dataset(ranks / "padded0.nc")
    np.testing.assert_array_equal(got["fired"].values[-1], got["fired"].values[0])  # input 0


def test_a_padded_share_of_open_windows_does_not_merge(ranks):
    # 21 inputs per rank and windows of 10: rank 0's open window cannot be merged
    for rank in (0, 1):
        assert not (ranks / f"padded_open_window{rank}.nc").exists()
        message = (ranks / f"padded_open_window{rank}.err").read_text()
        assert message.startswith("parts[0]: unit Sequential/1/0 has 21 events, not the 20 of "
                                  "its 2 whole windows of 10"), message


def test_dropped_inputs_are_not_recorded(ranks):
    case = _case(ranks)
    order = _rank_major_order(case, "dropped")
    assert order == [*range(0, 40, 2), *range(1, 40, 2)]  # input 40 is left out
    want = _one_process(case, "dropped", order)
    for rank in (0, 1):
        got = ba.open_dataset(ranks / f"dropped{rank}.nc")
        assert set(got["n"].values.tolist()) == {40}
        _assert_same_recording(got, want)
