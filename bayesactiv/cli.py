"""The ``bayesactiv`` command line: ``record | train | fit | compare | report | demo``.

Exit codes: 0 success; 2 bad input (unknown network or layer, bad path, malformed
dataset file, invalid option); 1 an unexpected failure (with a traceback when
``BAYESACTIV_DEBUG=1``). Errors from bad input are printed as one line, no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class CliError(Exception):
    """Bad input detected by the command line itself."""


def _atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    if not path.parent.exists():
        raise CliError(f"output directory {str(path.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _threshold(args: argparse.Namespace):
    from bayesactiv.recording import FractionOfMax, Quantile

    chosen = [v is not None for v in (args.threshold, args.fraction_of_max, args.quantile)]
    if sum(chosen) > 1:
        raise CliError("choose one of --threshold, --fraction-of-max, --quantile")
    if args.fraction_of_max is not None:
        return FractionOfMax(args.fraction_of_max)
    if args.quantile is not None:
        return Quantile(args.quantile)
    return 0.0 if args.threshold is None else args.threshold


def _open(path: str):
    import bayesactiv as ba

    if not Path(path).exists():
        raise CliError(f"no such dataset file: {path}")
    return ba.open_dataset(path)


def cmd_record(args: argparse.Namespace) -> int:
    import bayesactiv as ba
    from bayesactiv import zoo

    network = zoo.load(args.network, epoch=args.epoch)
    x, y = zoo.dataset(args.network, split=args.split)
    layers = args.layers or zoo.hidden_layers(args.network)
    name = args.name or args.network
    ds = ba.record(
        network,
        x,
        layers,
        labels=y,
        threshold=_threshold(args),
        window_size=args.window_size,
        keep_events=args.keep_events,
        network=name,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    ds.attrs["zoo_network"] = args.network
    ds.attrs["split"] = args.split
    if args.epoch is not None:
        ds = ba.dataset.set_epoch(ds, args.epoch)
    out = ba.save(ds, args.output)
    print(f"recorded {ds.sizes['unit']} units from {len(set(ds['layer'].values))} layers "
          f"over {int(ds['n'].max())} events -> {out}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from bayesactiv import zoo

    names = zoo.names() if args.network == "all" else [args.network]
    for name in names:
        card = zoo.train(name, out_dir=args.out_dir, progress=not args.quiet)
        final = card["checkpoints"][-1]
        print(f"{name}: epoch {final['epoch']}: train accuracy {final['train_accuracy']:.4f}, "
              f"test accuracy {final['test_accuracy']:.4f}")
    return EXIT_OK


def cmd_fit(args: argparse.Namespace) -> int:
    import bayesactiv as ba

    ds = ba.combine([_open(p) for p in args.datasets])
    result = ba.fit(
        ds,
        model=args.model,
        group_by=tuple(args.group_by),
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=args.seed,
        progress=not args.quiet,
    )
    groups = result.groups(prob=args.prob).to_dataframe()
    units = result.units(prob=args.prob).to_dataframe()
    print(result.summary().to_string())
    print()
    print(groups.to_string())
    if args.output:
        out = Path(args.output)
        _atomic_write_text(out.with_name(out.stem + "_units.csv"), units.to_csv())
        _atomic_write_text(out.with_name(out.stem + "_groups.csv"), groups.to_csv())
        print(f"wrote {out.stem}_units.csv and {out.stem}_groups.csv in {out.parent}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    import bayesactiv as ba

    datasets = [_open(p) for p in args.datasets]
    comparison = ba.compare(
        datasets,
        by=args.by,
        reference=args.reference,
        prob=args.prob,
        seed=args.seed,
        draws=args.draws,
        chains=args.chains,
    )
    for line in comparison.verdicts():
        print(line)
    if args.output:
        _atomic_write_text(Path(args.output), comparison.to_dataframe().to_csv())
        print(f"wrote {args.output}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from bayesactiv.report import report_from_datasets

    datasets = [_open(p) for p in args.datasets]
    out = report_from_datasets(datasets, args.output, prob=args.prob, seed=args.seed,
                               progress=not args.quiet)
    print(f"report written to {out}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from bayesactiv.demo import run_demo

    out = run_demo(args.output, quick=args.quick, progress=not args.quiet, seed=args.seed)
    print(f"report: {Path(out).resolve() / 'report.html'}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayesactiv",
        description="Bayesian analysis of how the hidden units of neural networks fire.",
        epilog="Exit codes: 0 success, 2 bad input, 1 unexpected failure.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    rec = sub.add_parser("record", help="record hidden-unit firing of a reference network",
                         description="Record hidden-unit firing of a network of models/ on its "
                         "bundled data set and write an activation dataset (.nc or .zarr).")
    rec.add_argument("network", help="a reference network name (see `bayesactiv train --list`)")
    rec.add_argument("-o", "--output", required=True, help="output file: .nc (netCDF) or .zarr")
    rec.add_argument("--split", choices=["train", "test"], default="test",
                     help="which inputs to feed (default: test, the held-out inputs)")
    rec.add_argument("--epoch", type=int, default=None, help="checkpoint epoch (default: final)")
    rec.add_argument("--layers", nargs="+", default=None,
                     help="module names or glob patterns (default: every hidden layer)")
    rec.add_argument("--threshold", type=float, default=None,
                     help="fired means activation > this value (default 0)")
    rec.add_argument("--fraction-of-max", type=float, default=None,
                     help="fired means activation > this fraction of the unit's maximum")
    rec.add_argument("--quantile", type=float, default=None,
                     help="fired means activation > the unit's q-quantile over the inputs")
    rec.add_argument("--window-size", type=int, default=None,
                     help="also store fired counts per block of this many inputs (Fano factor)")
    rec.add_argument("--keep-events", action="store_true",
                     help="keep the raw (input x unit) firing events (bootstrap, CV, co-activation)")
    rec.add_argument("--batch-size", type=int, default=256, help="inputs per forward pass")
    rec.add_argument("--name", default=None, help="name stored in the network coordinate")
    common(rec)
    rec.set_defaults(func=cmd_record)

    tr = sub.add_parser("train", help="retrain a reference network from its recipe",
                        description="Retrain a reference network deterministically from its recipe "
                        "and write its checkpoints and model card.")
    tr.add_argument("network", help="a reference network name, or 'all'")
    tr.add_argument("--out-dir", default=None, help="models directory (default: the package's models/)")
    common(tr)
    tr.set_defaults(func=cmd_train)

    ft = sub.add_parser("fit", help="fit a hierarchical firing model to activation datasets",
                        description="Fit a PyMC hierarchical firing model and print group-level "
                        "posteriors with diagnostics; optionally write per-unit and per-group CSVs.")
    ft.add_argument("datasets", nargs="+", help="activation dataset files (.nc/.zarr), combined")
    ft.add_argument("--model", default="beta_binomial",
                    choices=["beta_binomial", "gamma_poisson", "negative_binomial", "binomial_window"],
                    help="statistical model of the firing (default: beta_binomial)")
    ft.add_argument("--group-by", nargs="+", default=["network", "layer"],
                    help="unit coordinates that define the groups sharing a prior")
    ft.add_argument("--draws", type=int, default=1000, help="posterior draws per chain")
    ft.add_argument("--tune", type=int, default=1000, help="tuning steps per chain")
    ft.add_argument("--chains", type=int, default=4, help="number of chains")
    ft.add_argument("--seed", type=int, default=0, help="random seed (fits are reproducible)")
    ft.add_argument("--prob", type=float, default=0.9, help="credible-interval mass (equal-tailed)")
    ft.add_argument("-o", "--output", default=None,
                    help="prefix path: writes PREFIX_units.csv and PREFIX_groups.csv")
    common(ft)
    ft.set_defaults(func=cmd_fit)

    cp = sub.add_parser("compare", help="posterior differences between networks, layers or epochs",
                        description="Fit datasets jointly and report the posterior difference of "
                        "MFR, MF, fraction dead, mu and kappa against a reference, with the "
                        "bootstrap counterpart and a one-line verdict per quantity.")
    cp.add_argument("datasets", nargs="+", help="activation dataset files (.nc/.zarr)")
    cp.add_argument("--by", default="network", choices=["network", "layer", "epoch"],
                    help="what differs between the levels compared")
    cp.add_argument("--reference", default=None, help="the level others are compared against")
    cp.add_argument("--prob", type=float, default=0.9, help="credible-interval mass")
    cp.add_argument("--draws", type=int, default=1000, help="posterior draws per chain")
    cp.add_argument("--chains", type=int, default=4, help="number of chains")
    cp.add_argument("--seed", type=int, default=0, help="random seed")
    cp.add_argument("-o", "--output", default=None, help="write the comparison table as CSV")
    common(cp)
    cp.set_defaults(func=cmd_compare)

    rp = sub.add_parser("report", help="write an HTML report for activation datasets",
                        description="Compute baselines and posteriors for the datasets and write a "
                        "report folder (CSV/Markdown tables, PNG figures, report.html).")
    rp.add_argument("datasets", nargs="+", help="activation dataset files (.nc/.zarr)")
    rp.add_argument("-o", "--output", default="report", help="report folder (default: report)")
    rp.add_argument("--prob", type=float, default=0.9, help="credible-interval mass")
    rp.add_argument("--seed", type=int, default=0, help="random seed")
    common(rp)
    rp.set_defaults(func=cmd_report)

    dm = sub.add_parser("demo", help="the main job: the memorization study on the reference networks",
                        description="Record every hidden layer of the reference networks, compute "
                        "baselines, fit the models, compare generalizing against memorizing networks "
                        "and write the report folder.")
    dm.add_argument("-o", "--output", default="report", help="report folder (default: report)")
    dm.add_argument("--quick", action="store_true", help="a reduced run (fewer networks and draws)")
    dm.add_argument("--seed", type=int, default=0, help="random seed")
    common(dm)
    dm.set_defaults(func=cmd_demo)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"bayesactiv: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesactiv`` console script.

    Examples
    --------
    >>> from bayesactiv.cli import main
    >>> main(["fit", "missing.nc"])  # doctest: +SKIP
    bayesactiv: error: no such dataset file: missing.nc
    2
    """
    from bayesactiv.dataset import DatasetError

    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.formatwarning = _one_line_warning
    try:
        return args.func(args)
    except (CliError, DatasetError, FileNotFoundError, KeyError, ValueError) as err:
        if os.environ.get("BAYESACTIV_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"bayesactiv: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("bayesactiv: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("BAYESACTIV_DEBUG"):
            raise
        print(f"bayesactiv: failed: {type(err).__name__}: {err} "
              "(set BAYESACTIV_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
