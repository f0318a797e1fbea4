"""Retrain every reference network of ``bayesactiv.zoo`` from its recipe.

Usage::

    .venv/bin/python models/train_all.py [OUT_DIR] [--quiet] [--overwrite]
    .venv/bin/python models/train_all.py --ship [--quiet]

The first form writes ``OUT_DIR/<name>/{card.json,README.md,epoch_NNNN.pt}``
(default: ``bayesactiv.zoo.default_train_dir()``). The second, for maintainers in a
source checkout, retrains into a temporary folder and then replaces the shipped
networks: the checkpoints and ``card.json`` in ``bayesactiv/zoo/checkpoints/<name>/``
and the human-readable card ``models/<name>/README.md``.

Training is deterministic (seeded, one thread, ``torch.use_deterministic_algorithms``):
rerunning on the same machine gives the same weights bit for bit; another CPU model
may give slightly different weights and accuracies.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bayesactiv import zoo

MODELS = Path(__file__).resolve().parent


def ship(cards: dict[str, dict], trained: Path) -> None:
    """Replace the shipped checkpoints, cards and READMEs with those trained in ``trained``."""
    for name, card in cards.items():
        shipped = zoo.checkpoints_dir() / name
        shipped.mkdir(exist_ok=True)
        files = [c["file"] for c in card["checkpoints"]]
        for stale in shipped.glob("epoch_*.pt"):
            if stale.name not in files:
                stale.unlink()  # tracked by git: the old file stays in the history
        for file in [*files, "card.json"]:
            shutil.copyfile(trained / name / file, shipped / file)
        (MODELS / name).mkdir(exist_ok=True)
        shutil.copyfile(trained / name / "README.md", MODELS / name / "README.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=None,
                        help=f"models folder to write (default {zoo.default_train_dir()})")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace networks already trained in OUT_DIR")
    parser.add_argument("--ship", action="store_true",
                        help="replace the networks shipped in this source checkout")
    args = parser.parse_args()
    if args.ship:
        if args.out_dir is not None:
            parser.error("--ship trains into a temporary folder: give no OUT_DIR")
        if zoo.checkpoints_dir() != MODELS.parent / "bayesactiv" / "zoo" / "checkpoints":
            parser.error(f"--ship updates the checkout of {MODELS}, but bayesactiv is "
                         f"imported from {zoo.checkpoints_dir().parent.parent}")
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = tmp if args.ship else args.out_dir
        cards = zoo.train_all(out_dir=out_dir, progress=not args.quiet, overwrite=args.overwrite)
        if args.ship:
            ship(cards, Path(tmp))
    print(f"{'network':26s} {'epoch':>5s} {'train':>7s} {'test':>7s} {'seconds':>8s}")
    for name, card in cards.items():
        last = card["checkpoints"][-1]
        print(
            f"{name:26s} {last['epoch']:5d} {last['train_accuracy']:7.4f} "
            f"{last['test_accuracy']:7.4f} {card['training_seconds']:8.1f}"
        )
    where = zoo.checkpoints_dir() if args.ship else args.out_dir or zoo.default_train_dir()
    print(f"written to {where}", file=sys.stderr)


if __name__ == "__main__":
    main()
