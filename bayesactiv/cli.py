"""The ``bayesactiv`` command line: ``record | train | fit | compare | report | demo``.

Exit codes: 0 success; 2 bad input (unknown network or layer, bad path, malformed
dataset file, invalid option); 1 an unexpected failure (with a traceback when
``BAYESACTIV_DEBUG=1``). Errors from bad input are printed as one line, no traceback.
Every option is checked (numbers, output paths) before any long work starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bayesactiv.data.checks import check_int, check_number, check_prob, check_seed
from bayesactiv.version import __version__

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

DATASET_SUFFIXES = (".nc", ".zarr")
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray", ".zattrs")


class CliError(Exception):
    """Bad input detected by the command line itself."""


# ---------------------------------------------------------------- checks before the work

# option destination -> check returning the value in its canonical type
_NUMBER_CHECKS: dict[str, Callable[[Any], Any]] = {
    "draws": lambda v: check_int(v, "--draws", minimum=1),
    "tune": lambda v: check_int(v, "--tune", minimum=0),
    "chains": lambda v: check_int(v, "--chains", minimum=1),
    "seed": lambda v: check_seed(v, "--seed"),
    "epoch": lambda v: check_int(v, "--epoch", minimum=0),
    "window_size": lambda v: check_int(v, "--window-size", minimum=1),
    "batch_size": lambda v: check_int(v, "--batch-size", minimum=1),
    "prob": lambda v: check_prob(v, "--prob"),
    "threshold": lambda v: check_number(v, "--threshold"),
    "fraction_of_max": lambda v: check_number(v, "--fraction-of-max", minimum=0, maximum=1),
    "quantile": lambda v: check_number(v, "--quantile", minimum=0, maximum=1),
    "target_accept": lambda v: check_number(v, "--target-accept", minimum=0, maximum=1,
                                            exclusive=True),
}


def _sampler_options(args: argparse.Namespace) -> dict[str, Any]:
    return {} if args.target_accept is None else {"target_accept": args.target_accept}


def _check_numbers(args: argparse.Namespace) -> None:
    for dest, check in _NUMBER_CHECKS.items():
        value = getattr(args, dest, None)
        if value is not None:
            setattr(args, dest, check(value))


def _check_folder(folder: Path, option: str) -> None:
    if not folder.exists():
        raise CliError(f"{option}: directory {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise CliError(f"{option}: {str(folder)!r} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"{option}: directory {str(folder)!r} is not writable")


def _check_output_file(path: Path, option: str) -> None:
    """A file the command will (re)write: its folder exists and is writable; it is no folder."""
    if not path.name:
        raise CliError(f"{option}: {str(path)!r} names no file")
    _check_folder(path.parent, option)
    if path.is_dir():
        raise CliError(f"{option}: {str(path)!r} is a directory; give a file name")


def _check_dataset_output(path: Path) -> None:
    if path.suffix.lower() not in DATASET_SUFFIXES:
        raise CliError(f"-o: unknown format for {str(path)!r}; use a '.nc' or '.zarr' suffix")
    if path.suffix.lower() == ".nc":
        _check_output_file(path, "-o")
        return
    _check_folder(path.parent, "-o")
    if path.exists() and not (path.is_dir() and any((path / m).exists() for m in _ZARR_MARKERS)):
        raise CliError(f"-o: {str(path)!r} exists and is not a zarr store; "
                       f"refusing to replace it")


def _fit_outputs(prefix: str) -> tuple[Path, Path]:
    out = Path(prefix)
    if out.is_dir() or not out.name:
        raise CliError(f"-o: {prefix!r} is a directory; give a prefix such as "
                       f"{str(Path(prefix) / 'fit')!r}")
    return out.with_name(out.stem + "_units.csv"), out.with_name(out.stem + "_groups.csv")


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


# ---------------------------------------------------------------- writing


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` through a temporary file renamed into place, with the umask's mode."""
    path = Path(path)
    if not path.parent.exists():
        raise CliError(f"output directory {str(path.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; other outputs follow the umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _open(path: str):
    from bayesactiv.data import open_dataset

    if not Path(path).exists():
        raise CliError(f"no such dataset file: {path}")
    return open_dataset(path)


# ---------------------------------------------------------------- commands


def cmd_record(args: argparse.Namespace) -> int:
    from bayesactiv import zoo
    from bayesactiv.data import save, set_epoch
    from bayesactiv.recording import record
    from bayesactiv.recording.sources import load_inputs

    output = Path(args.output)
    _check_dataset_output(output)
    threshold = _threshold(args)
    reference = args.network in zoo.RECIPES
    if reference and args.weights is not None:
        raise CliError("--weights: only for a network built by package.module:callable "
                       f"({args.network!r} is a reference network with its own checkpoints)")
    # under torchrun the process group comes first, so that an --inputs callable can build a
    # DistributedSampler of this rank
    rank, world = _process_group()
    if reference:
        network = zoo.load(args.network, epoch=args.epoch)
        x, y = zoo.dataset(args.network, split=args.split)
        layers = args.layers or zoo.hidden_layers(args.network)
        if args.inputs is not None:
            x, y = load_inputs(args.inputs)
    else:
        network, x, y, layers = _external(args)
    if world > 1 and _is_array(x):  # under torchrun: this rank's contiguous shard (record
        per = -(-len(x) // world)  # merges rank-major); an iterable (a DataLoader with a
        x = x[rank * per:(rank + 1) * per]  # DistributedSampler) is this rank's already
        y = None if y is None else y[rank * per:(rank + 1) * per]
    ds = record(
        network,
        x,
        layers,
        labels=y,
        threshold=threshold,
        window_size=args.window_size,
        keep_events=args.keep_events,
        network=args.name,
        batch_size=_batch_size(args.batch_size, x),
        progress=not args.quiet and rank == 0,
        spatial=args.spatial,
    )
    if reference:
        ds.attrs["zoo_network"] = args.network
        ds.attrs["split"] = args.split
    else:
        ds.attrs["network_source"] = args.network
    if args.epoch is not None:
        ds = set_epoch(ds, args.epoch)
    if rank == 0:
        out = save(ds, output)
        print(f"recorded {ds.sizes['unit']} units from {len(set(ds['layer'].values))} layers "
              f"over {int(ds['n'].max())} events"
              + (f" on {world} ranks" if world > 1 else "") + f" -> {out}")
    return EXIT_OK


def _is_array(x: Any) -> bool:
    """Inputs that are one tensor or array (batched by record), not an iterable of batches."""
    import numpy as np
    import torch

    return isinstance(x, torch.Tensor | np.ndarray)


def _batch_size(given: int | None, x: Any) -> int | None:
    """256 inputs per pass for one tensor or array unless given; an iterable of batches
    brings its own (a size given for one is refused by record)."""
    if given is not None:
        return given
    return 256 if _is_array(x) else None


def _external(args: argparse.Namespace):
    """A network named by a file, a callable or a model folder, and the inputs it needs."""
    from bayesactiv.recording.sources import activation_layers, load_inputs, load_network

    if args.inputs is None:
        raise CliError(f"--inputs: needed for {args.network!r}, which is not a reference "
                       "network (a .pt or .npy file, or package.module:callable)")
    network = load_network(args.network, args.weights)
    x, y = load_inputs(args.inputs)
    layers = args.layers or activation_layers(network)
    if not layers:
        raise CliError(f"--layers: {args.network!r} has no activation modules to take as its "
                       "hidden layers; name the layers to record")
    return network, x, y, layers


def _process_group() -> tuple[int, int]:
    """(rank, world size): under torchrun (RANK and WORLD_SIZE set) the process group is
    initialized here, gloo on CPU and NCCL when CUDA is there; (0, 1) otherwise."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return 0, 1
    import torch

    dist = torch.distributed
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def cmd_train(args: argparse.Namespace) -> int:
    from bayesactiv import zoo

    if args.list:
        print("\n".join(zoo.names()))
        return EXIT_OK
    if args.network is None:
        raise CliError("train: name a reference network (see `bayesactiv train --list`) or 'all'")
    names = zoo.names() if args.network == "all" else [args.network]
    root = zoo.default_train_dir() if args.out_dir is None else Path(args.out_dir).expanduser()
    for name in names:
        zoo.train_folder(name, root)  # an unknown name or a folder inside the package: refused now
    print(f"training into {root}")
    for name in names:
        card = zoo.train(name, out_dir=root, progress=not args.quiet)
        final = card["checkpoints"][-1]
        print(f"{name}: epoch {final['epoch']}: train accuracy {final['train_accuracy']:.4f}, "
              f"test accuracy {final['test_accuracy']:.4f} -> {root / name}")
    if root.resolve() != zoo.models_dir().resolve():
        print(f"bayesactiv and zoo.load read {zoo.models_dir()}; "
              f"set BAYESACTIV_MODELS={root} to use these networks")
    return EXIT_OK


def cmd_fit(args: argparse.Namespace) -> int:
    from bayesactiv.bayes import fit
    from bayesactiv.data import combine, normalize_group_by

    group_by = normalize_group_by(args.group_by)
    outputs = _fit_outputs(args.output) if args.output else ()
    for path in outputs:
        _check_output_file(path, "-o")
    ds = combine([_open(p) for p in args.datasets])
    result = fit(
        ds,
        model=args.model,
        group_by=group_by,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=args.seed,
        progress=not args.quiet,
        **_sampler_options(args),
    )
    groups = result.groups(prob=args.prob).to_dataframe()
    units = result.units(prob=args.prob).to_dataframe()
    print(result.summary().to_string())
    print()
    print(groups.to_string())
    if outputs:
        units_csv, groups_csv = outputs
        _atomic_write_text(units_csv, units.to_csv())
        _atomic_write_text(groups_csv, groups.to_csv())
        print(f"wrote {units_csv.name} and {groups_csv.name} in {units_csv.parent}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from bayesactiv.comparison import compare

    if args.output:
        _check_output_file(Path(args.output), "-o")
    datasets = [_open(p) for p in args.datasets]
    comparison = compare(
        datasets,
        by=args.by,
        reference=args.reference,
        prob=args.prob,
        seed=args.seed,
        draws=args.draws,
        chains=args.chains,
        **_sampler_options(args),
    )
    for line in comparison.verdicts():
        print(line)
    if args.output:
        _atomic_write_text(Path(args.output), comparison.to_dataframe().to_csv())
        print(f"wrote {args.output}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from bayesactiv.report import check_out_dir, report_from_datasets

    check_out_dir(Path(args.output))
    datasets = [_open(p) for p in args.datasets]
    out = report_from_datasets(datasets, args.output, prob=args.prob, seed=args.seed,
                               progress=not args.quiet)
    print(f"report written to {out}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from bayesactiv.report import check_out_dir
    from bayesactiv.studies import run_demo

    check_out_dir(Path(args.output))
    out = run_demo(args.output, quick=args.quick, progress=not args.quiet, seed=args.seed)
    print(f"report: {Path(out).resolve() / 'report.html'}")
    return EXIT_OK


# ---------------------------------------------------------------- parser


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """States every option's default: a help text that names its default is kept as it
    is; a flag's default is "off"; a list default is shown as typed on the command line."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or not action.option_strings or action.required
                or action.default in (None, argparse.SUPPRESS)):
            return text
        if action.nargs == 0 and action.default is False:
            return f"{text} (default: off)"
        if isinstance(action.default, (list, tuple)):
            shown = " ".join(map(str, action.default)).replace("%", "%%")
            return f"{text} (default: {shown})"
        return f"{text} (default: %(default)s)"


_SAMPLER_HELP = ("the sampler's target acceptance rate, in (0, 1); raise it (0.95) when "
                 "the fit reports divergent transitions (default: the sampler's, 0.8)")

#: makes one subcommand parser: ``(name, func, help=..., description=...)`` -> the parser
CommandMaker = Callable[..., argparse.ArgumentParser]


class _RecordHelpFormatter(_HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """:class:`_HelpFormatter` that keeps the examples' lines as written."""


def _add_record(command: CommandMaker) -> None:
    rec = command("record", cmd_record, help="record hidden-unit firing of a network",
                  description="Record hidden-unit firing of a network and write an activation "
                  "dataset (.nc or .zarr): a reference network on its bundled data set, or "
                  "any network with --inputs. Under torchrun every rank records its share of "
                  "the inputs and rank 0 writes the one dataset of all of them.",
                  epilog="examples:\n"
                  "  bayesactiv record digits-cnn -o cnn.nc\n"
                  "  bayesactiv record net.pt2 --inputs x.npy -o net.nc        "
                  "# a torch.export file\n"
                  "  bayesactiv record mypkg.models:Net --weights state.pt "
                  "--inputs x.pt -o net.nc\n"
                  "  bayesactiv record mypkg.models:Net --inputs mypkg.data:loader -o net.nc"
                  "   # a callable returning a DataLoader\n"
                  "  bayesactiv record ./my-hf-model --inputs mypkg.data:tokenized "
                  "--layers '*act*' -o hf.nc   # a local Hugging Face folder\n"
                  "  torchrun --nproc-per-node 2 -m bayesactiv record digits-mlp -o mlp.nc",
                  formatter_class=_RecordHelpFormatter)
    rec.add_argument("network", help="a reference network name (see `bayesactiv train --list`), "
                     "a torch.export file (.pt2), package.module:callable that builds the "
                     "network, or a local Hugging Face model folder")
    rec.add_argument("--inputs", default=None,
                     help="the inputs: a .pt file (a tensor or an (inputs, labels) pair), a "
                     ".npy file, or package.module:callable returning a tensor, an array or a "
                     "DataLoader (default: a reference network's bundled data set; needed "
                     "for any other network)")
    rec.add_argument("--weights", default=None,
                     help="a state_dict file (torch.save) for a network built by "
                     "package.module:callable (default: the callable's own weights)")
    rec.add_argument("-o", "--output", required=True, help="output file: .nc (netCDF) or .zarr")
    rec.add_argument("--split", choices=["train", "test"], default="test",
                     help="which inputs to feed (test: the held-out inputs)")
    rec.add_argument("--epoch", type=int, default=None,
                     help="checkpoint epoch (default: the final checkpoint)")
    rec.add_argument("--layers", nargs="+", default=None,
                     help="module names or glob patterns (default: every hidden layer)")
    rec.add_argument("--threshold", type=float, default=None,
                     help="fired means activation > this value (default: 0, unless "
                     "--fraction-of-max or --quantile is given)")
    rec.add_argument("--fraction-of-max", type=float, default=None,
                     help="fired means activation > this fraction (0 to 1) of the unit's maximum "
                     "(default: not used)")
    rec.add_argument("--quantile", type=float, default=None,
                     help="fired means activation > the unit's q-quantile (0 to 1) over the "
                     "inputs (default: not used)")
    rec.add_argument("--window-size", type=int, default=None,
                     help="also store fired counts per block of this many inputs, for Fano "
                     "factors (default: no windows)")
    rec.add_argument("--spatial", choices=["per_position", "any"], default="per_position",
                     help="events of a convolution channel: one per input and position, "
                     "clustered by input (per_position), or one per input, fired at any "
                     "position (any) (default: per_position)")
    rec.add_argument("--keep-events", action="store_true",
                     help="keep the raw (input x unit) firing events (bootstrap, CV, co-activation)")
    rec.add_argument("--batch-size", type=int, default=None,
                     help="inputs per forward pass, for inputs that are one tensor or array "
                     "(default: 256; a DataLoader or list of batches brings its own)")
    rec.add_argument("--name", default=None,
                     help="name stored in the network coordinate (default: the network's name)")


def _add_train(command: CommandMaker) -> None:
    tr = command("train", cmd_train, help="retrain a reference network from its recipe",
                 description="Retrain a reference network deterministically from its recipe and "
                 "write its checkpoints and model card into a folder of yours (never into the "
                 "installed package).")
    tr.add_argument("network", nargs="?", default=None,
                    help="a reference network name (see --list), or 'all'")
    tr.add_argument("--list", action="store_true", help="list the reference networks and exit")
    tr.add_argument("--out-dir", default=None,
                    help="models folder to write into (default: $BAYESACTIV_MODELS when set, "
                    "else $XDG_DATA_HOME/bayesactiv/models, i.e. ~/.local/share/bayesactiv/models)")


def _add_fit(command: CommandMaker) -> None:
    ft = command("fit", cmd_fit, help="fit a hierarchical firing model to activation datasets",
                 description="Fit a PyMC hierarchical firing model and print group-level "
                 "posteriors with diagnostics; optionally write per-unit and per-group CSVs.")
    ft.add_argument("datasets", nargs="+", help="activation dataset files (.nc/.zarr), combined")
    ft.add_argument("--model", default=None,
                    choices=["beta_binomial", "clustered_beta_binomial", "gamma_poisson",
                             "negative_binomial", "binomial_window"],
                    help="statistical model of the firing (default: clustered_beta_binomial "
                    "when events come in clusters, tokens or positions; else beta_binomial)")
    ft.add_argument("--group-by", nargs="+", default=["network", "layer"],
                    choices=["network", "layer", "epoch"], metavar="KEY",
                    help="unit coordinates (network, layer, epoch) that define the groups "
                    "sharing a prior")
    ft.add_argument("--draws", type=int, default=1000, help="posterior draws per chain")
    ft.add_argument("--tune", type=int, default=1000, help="tuning steps per chain")
    ft.add_argument("--chains", type=int, default=4, help="number of chains")
    ft.add_argument("--seed", type=int, default=0, help="random seed (fits are reproducible)")
    ft.add_argument("--target-accept", type=float, default=None, help=_SAMPLER_HELP)
    ft.add_argument("--prob", type=float, default=0.9,
                    help="credible-interval mass (equal-tailed)")
    ft.add_argument("-o", "--output", default=None,
                    help="prefix path: writes PREFIX_units.csv and PREFIX_groups.csv "
                    "(default: print only)")


def _add_compare(command: CommandMaker) -> None:
    cp = command("compare", cmd_compare,
                 help="posterior differences between networks, layers or epochs",
                 description="Fit datasets jointly and report the posterior difference of "
                 "MFR, MF, fraction dead, mu and kappa against a reference, with the "
                 "bootstrap counterpart and a one-line verdict per quantity.")
    cp.add_argument("datasets", nargs="+", help="activation dataset files (.nc/.zarr)")
    cp.add_argument("--by", default="network", choices=["network", "layer", "epoch"],
                    help="what differs between the levels compared")
    cp.add_argument("--reference", default=None,
                    help="the level others are compared against (default: the first level)")
    cp.add_argument("--prob", type=float, default=0.9, help="credible-interval mass")
    cp.add_argument("--draws", type=int, default=1000, help="posterior draws per chain")
    cp.add_argument("--chains", type=int, default=4, help="number of chains")
    cp.add_argument("--seed", type=int, default=0, help="random seed")
    cp.add_argument("--target-accept", type=float, default=None, help=_SAMPLER_HELP)
    cp.add_argument("-o", "--output", default=None,
                    help="write the comparison table as CSV (default: print only)")


def _add_report(command: CommandMaker) -> None:
    rp = command("report", cmd_report, help="write an HTML report for activation datasets",
                 description="Compute baselines and posteriors for the datasets and write a "
                 "report folder (CSV/Markdown tables, PNG figures, report.html).")
    rp.add_argument("datasets", nargs="+", help="activation dataset files (.nc/.zarr)")
    rp.add_argument("-o", "--output", default="report", help="report folder")
    rp.add_argument("--prob", type=float, default=0.9, help="credible-interval mass")
    rp.add_argument("--seed", type=int, default=0, help="random seed")


def _add_demo(command: CommandMaker) -> None:
    dm = command("demo", cmd_demo,
                 help="the main job: the memorization study on the reference networks",
                 description="Record every hidden layer of the reference networks, compute "
                 "baselines, fit the models, compare generalizing against memorizing networks "
                 "and write the report folder.")
    dm.add_argument("-o", "--output", default="report", help="report folder")
    dm.add_argument("--quick", action="store_true",
                    help="a reduced run (fewer networks and draws)")
    dm.add_argument("--seed", type=int, default=0, help="random seed")


#: the subcommands, in the order ``bayesactiv --help`` lists them
_SUBCOMMANDS = (_add_record, _add_train, _add_fit, _add_compare, _add_report, _add_demo)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bayesactiv`` command.

    Examples
    --------
    >>> from bayesactiv.cli import build_parser
    >>> args = build_parser().parse_args(["fit", "a.nc", "--draws", "200"])
    >>> args.draws, args.chains, args.prob
    (200, 4, 0.9)
    """
    parser = argparse.ArgumentParser(
        prog="bayesactiv",
        description="Bayesian analysis of how the hidden units of neural networks fire.",
        epilog="Exit codes: 0 success, 2 bad input, 1 unexpected failure.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], **kwargs: Any):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        p = sub.add_parser(name, **kwargs)
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=func)
        return p

    for add in _SUBCOMMANDS:
        add(command)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"bayesactiv: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesactiv`` console script.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 success, 2 bad input, 1 unexpected failure.

    Examples
    --------
    >>> from bayesactiv.cli import main
    >>> main(["fit", "missing.nc"])
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    previous_format = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    try:
        return _run(args)
    finally:
        warnings.formatwarning = previous_format


def _run(args: argparse.Namespace) -> int:
    from bayesactiv.data import DatasetError

    try:
        _check_numbers(args)
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
