"""Retrain every reference network of ``bayesactiv.zoo`` from its recipe.

Usage::

    .venv/bin/python models/train_all.py [OUT_DIR] [--quiet]

Writes ``OUT_DIR/<name>/{card.json,README.md,epoch_NNNN.pt}`` (default: this
folder, or ``$BAYESACTIV_MODELS``). Training is deterministic (seeded, one
thread, ``torch.use_deterministic_algorithms``), so rerunning on the same
machine reproduces the checkpoints bit for bit.
"""

from __future__ import annotations

import argparse

from bayesactiv import zoo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=None, help="models folder to write")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args()
    cards = zoo.train_all(out_dir=args.out_dir, progress=not args.quiet)
    print(f"{'network':26s} {'epoch':>5s} {'train':>7s} {'test':>7s} {'seconds':>8s}")
    for name, card in cards.items():
        last = card["checkpoints"][-1]
        print(
            f"{name:26s} {last['epoch']:5d} {last['train_accuracy']:7.4f} "
            f"{last['test_accuracy']:7.4f} {card['training_seconds']:8.1f}"
        )


if __name__ == "__main__":
    main()
