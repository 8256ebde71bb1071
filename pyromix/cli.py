"""``pyromix fit | evaluate | sample | compare | list``: the command line users script against.

Every failure is one line on stderr. Exit status: 0 done; 1 training diverged (with the epoch
and step; the last good checkpoint is kept) or failed; 2 bad input, refused before any work
starts (unknown names, bad paths or values, a configuration too large for the machine's memory
or an evaluation longer than a day, a broken plugin, data other than the run's, a run directory
in use by another process); 130 interrupted (Ctrl-C). ``PYROMIX_TRACEBACK=1`` (or true, yes, on)
shows the traceback of an unexpected failure; 0 or unset does not.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .cli_flags import OneLineParser, add_recipe_flags, flag_type, model_of, recipe_overrides
from .recipes.arguments import MAX_SEED
from .schema import Interval

if TYPE_CHECKING:
    from .distributed import Devices

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
USAGE_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError)  # DataError is a ValueError
TRACEBACK_ON = ("1", "true", "yes", "on")  # PYROMIX_TRACEBACK values that show tracebacks


_positive_int, _non_negative_int = flag_type(Interval(int, 1)), flag_type(Interval(int, 0))
_non_negative_float = flag_type(Interval(float, 0))
_seed = flag_type(Interval(int, 0, MAX_SEED))


def build_parser(model: str | None = None) -> argparse.ArgumentParser:
    """The ``pyromix`` argument parser (the CLI reference is generated from it).

    ``fit`` has a flag for every argument of every registered recipe
    (:mod:`pyromix.cli_flags`); those of ``model``, a registered recipe, parse and show as it
    declares them.
    """
    from .data import DATASETS
    from .distributed import ACCELERATORS, PRECISIONS, STRATEGIES
    from .recipes import common_argument

    parser = OneLineParser(prog="pyromix", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    fit = commands.add_parser("fit", help="train a model and write a run directory")
    fit.add_argument(
        "model",
        metavar="MODEL",
        help="a recipe name (pyromix list), or FILE.py:NAME for the Recipe NAME defined in FILE.py",
    )
    fit.add_argument(
        "--data",
        help=f"dataset name ({', '.join(DATASETS)}) or a .npy/.npz/.csv path (default: digits; "
        "with --resume, the run's)",
    )
    fit.add_argument("--labels", help="labels for a user data file (.npy or .csv)")
    fit.add_argument("--data-dir", help="folder with IDX files (mnist, fashion-mnist)")
    fit.add_argument("--out", help="run directory (default runs/MODEL-DATA)")
    fit.add_argument("--device", help="cpu, cuda or cuda:N: one device (--accelerator's alias)")
    fit.add_argument(
        "--accelerator", choices=ACCELERATORS, help="cpu (default), cuda, or auto (cuda if any)"
    )
    fit.add_argument(
        "--devices", type=_positive_int, help="devices per machine, one process each (default 1)"
    )
    fit.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="auto (default: DDP when there are several processes) or ddp",
    )
    fit.add_argument(
        "--num-nodes", type=_positive_int, help="machines (launched by torchrun or SLURM)"
    )
    fit.add_argument("--precision", choices=PRECISIONS, help="32-true (default) or bf16-mixed")
    fit.add_argument(
        "--samples",
        type=_positive_int,
        default=1000,
        help="importance samples for the test log-likelihood",
    )
    fit.add_argument(
        "--mc-kl",
        dest="analytic_kl",
        action="store_false",
        default=argparse.SUPPRESS,
        help="Monte-Carlo KL instead of analytic (--no-analytic-kl)",
    )
    fit.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (only --epochs, --patience and --device may change; "
        "--data may point at the run's data file where it is now)",
    )
    fit.add_argument("--force", action="store_true", help="replace an existing run in --out")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument(
        "--restarts",
        type=_positive_int,
        default=1,
        metavar="R",
        help="train R initialisations (pretraining included) for a tenth of the epochs each and "
        "the one with the best validation objective among those that did not collapse to the "
        "end (pyromix.restarts; default 1)",
    )
    fit.add_argument(
        "--checkpoint-every",
        type=_non_negative_float,
        metavar="SECONDS",
        help="seconds between checkpoints (default 10; 0: every epoch; always the first and last)",
    )
    fit.add_argument(
        "--validate-steps",
        action="store_true",
        help="Pyro's argument checks on every step (slower), not only on the first",
    )
    capture = fit.add_mutually_exclusive_group()
    capture.add_argument(
        "--capture-after",
        type=_non_negative_int,
        metavar="STEPS",
        help="replay a step's recorded tensor operations once the programs' structure has "
        "held for this many steps (default 20, pyromix.capture.CAPTURE_AFTER)",
    )
    capture.add_argument(
        "--no-capture",
        action="store_true",
        help="run every step through the Pyro programs (for programs that branch on data)",
    )
    add_recipe_flags(fit, model)

    evaluate = commands.add_parser("evaluate", help="re-evaluate a run on its test split")
    evaluate.add_argument("run", metavar="DIR", help="the run directory that fit wrote")
    evaluate.add_argument(
        "--samples", type=_positive_int, default=1000,
        help="importance samples per test point (raise it when many Pareto k exceed 0.7)",
    )
    evaluate.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    evaluate.add_argument(
        "--eval-labels",
        choices=["hidden", "revealed"],
        help=common_argument("eval_labels").help.replace(
            "recorded with the run", "default: as the run was fitted"
        ),
    )

    sample = commands.add_parser("sample", help="draw samples from a trained run")
    sample.add_argument("run", metavar="DIR", help="the run directory that fit wrote")
    sample.add_argument("--n", type=_positive_int, default=64, help="number of samples")
    sample.add_argument("--out", required=True, help="image file to write (e.g. samples.png)")
    sample.add_argument("--seed", type=_seed, default=0, help="random seed of the draws")
    sample.add_argument(
        "--component", type=_non_negative_int, help="draw from one cluster or prior component only"
    )
    sample.add_argument(
        "--categories",
        choices=["posterior", "prior"],
        default="posterior",
        help="draw each sample's cluster/component from the aggregated posterior q(c) over the "
        "training data (Lavda et al. 2020, eq. 14) or from the prior p(c)",
    )

    compare = commands.add_parser(
        "compare", help="rank runs on one test split by held-out log-likelihood"
    )
    compare.add_argument("runs", nargs="+", metavar="DIR", help="two or more run directories")
    compare.add_argument(
        "--samples", type=_positive_int, default=1000, help="importance samples per test point"
    )
    compare.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    compare.add_argument("--json", help="also write the table's rows to this JSON file")
    compare.add_argument(
        "--arviz",
        metavar="FILE",
        help="also write arviz.compare's table (elpd sums, stacking weights) to this CSV file",
    )

    for command in (evaluate, sample):
        command.add_argument(
            "--data",
            help="where the run's data file is now, if it moved (checked against the SHA-256 "
            "recorded at fit)",
        )
        command.add_argument("--labels", help="where the run's labels file is now, if it moved")
    listing = commands.add_parser("list", help="models and datasets, one line each")
    for command in (fit, evaluate, sample, compare, listing):
        command.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="MODULE",
            help="import MODULE first, for the recipes it registers (repeatable); recipes of "
            "installed entry points (group pyromix.recipes) need no flag",
        )
    return parser


def _fit(ns: argparse.Namespace) -> int:
    from .distributed import launched_worker
    from .preflight import check_launcher
    from .recipes import get_recipe, is_recipe_file, load_recipe_file
    from .rundir import DiskFull, check_output_folder, refuse_existing_run, run_lock

    if ns.resume and ns.force:
        raise ValueError("--resume and --force: expected one of them, got both")
    if is_recipe_file(ns.model):
        ns.model = load_recipe_file(ns.model)
    get_recipe(ns.model)
    data = ns.data or "digits"
    data_name = Path(data).stem if Path(data).suffix else data
    out = Path(ns.out if ns.out is not None else f"runs/{ns.model}-{data_name}")
    check_output_folder(ns.out if ns.out is not None else out)
    refuse_existing_run(out, resume=ns.resume, force=ns.force)
    overrides = recipe_overrides(ns)
    devices = _devices(ns)
    check_launcher(devices)
    # Rank 0 holds the run directory; the processes it starts write nothing there.
    worker = devices.distributed and launched_worker()
    with contextlib.nullcontext() if worker else run_lock(out):
        try:
            return _fit_locked(ns, out, overrides, devices)
        except KeyboardInterrupt:
            if worker:  # Ctrl-C reaches every process; rank 0 says it once
                return EXIT_INTERRUPTED
            print(f"pyromix fit: interrupted; {_resume_hint(ns, out)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except DiskFull as e:
            print(f"pyromix fit: failed: {e.strerror}; {_resume_hint(ns, out)}", file=sys.stderr)
            return EXIT_FAILED


def _resume_hint(ns: argparse.Namespace, out: Path) -> str:
    from .rundir import CHECKPOINT

    if not (out / CHECKPOINT).exists():
        return "nothing was saved"
    return f"continue with: pyromix fit {ns.model} --resume --out {shlex.quote(str(out))}"


def _fit_locked(ns: argparse.Namespace, out: Path, overrides: dict, devices: Devices) -> int:
    """:func:`_fit` once it holds the run directory."""
    from .diagnostics import collapse_warning
    from .distributed import ProcessLost
    from .preflight import check_run_devices
    from .restarts import train_restarts
    from .rundir import CHECKPOINT, RUN_FILES, refuse_existing_run
    from .runs import evaluate_run, prepare_recipe, write_report
    from .train import TrainingDiverged

    # Again: another process may have finished a run there meanwhile.
    refuse_existing_run(out, resume=ns.resume, force=ns.force)
    run = prepare_recipe(
        ns.model,
        ns.data,
        out=out,
        resume=ns.resume,
        labels=ns.labels,
        device=devices.device_name,
        data_dir=ns.data_dir,
        **overrides,
    )
    check_run_devices(devices, run.args, out / CHECKPOINT if ns.resume else None)
    _check_evaluation_time(run, ns.samples)
    if ns.force:  # once the new settings are checked, so that a directory never mixes two runs
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    replicas = devices.start()  # after every check above: a refusal never leaves a hang
    try:
        run = train_restarts(
            run,
            ns.restarts,
            out=out,
            resume=ns.resume,
            progress=not ns.quiet,
            devices=replicas,
            validate_steps=ns.validate_steps,
            **({"capture_after": None} if ns.no_capture else {}),
            **({} if ns.capture_after is None else {"capture_after": ns.capture_after}),
            **({} if ns.checkpoint_every is None else {"checkpoint_every": ns.checkpoint_every}),
        )
    except TrainingDiverged as e:
        kept = out / CHECKPOINT
        where = f"the last good epoch is in {kept}" if kept.exists() else "nothing was saved"
        print(f"pyromix fit: training diverged: {e}; {where}", file=sys.stderr)
        return EXIT_FAILED
    except ProcessLost as e:
        if replicas.is_zero:
            print(f"pyromix fit: failed: {e}; {_resume_hint(ns, out)}", file=sys.stderr)
        return EXIT_FAILED
    if not replicas.is_zero:
        return EXIT_OK  # rank 0 alone evaluates and writes the run directory
    metrics = evaluate_run(run, ns.samples)
    write_report(run, metrics, out)
    print((out / "metrics.json").read_text(), end="")
    _warn_samples(metrics.get("samples_warning"))
    print(f"wrote {out}/", file=sys.stderr)
    _warn(collapse_warning(metrics))
    return EXIT_OK


def _warn(line: str) -> None:
    if line:
        print(f"pyromix: {line}", file=sys.stderr)


def _devices(ns: argparse.Namespace) -> Devices:
    """The Devices of ``fit``'s flags; ``--device`` is the one-device shorthand."""
    from .distributed import Devices

    flags = {
        "accelerator": ns.accelerator,
        "devices": ns.devices,
        "strategy": ns.strategy,
        "num_nodes": ns.num_nodes,
        "precision": ns.precision,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    if ns.device is None:
        return Devices(**given)
    clash = sorted(set(given) - {"precision"})
    if clash:
        raise ValueError(f"device: --device is the one-device shorthand; drop it or --{clash[0]}")
    single = Devices.parse(ns.device)
    precision = given.get("precision", "32-true")
    return Devices(single.accelerator, index=single.index, precision=precision)


def _check_evaluation_time(run, num_samples: int) -> None:
    """Refuse (or announce) an importance-sampled evaluation that would take too long."""
    from .evaluate import log_likelihood
    from .preflight import check_evaluation_time

    if run.args["likelihood"] == "none":  # a GAN: no likelihood to estimate
        return
    test = run.dataset.test.batch(slice(None))
    check_evaluation_time(
        lambda s: log_likelihood(run.model, run.guide, test.x, s, y=test.y, y_mask=test.y_mask),
        num_samples,
    )


def _run_folder(path: str) -> Path:
    """The run directory of ``DIR`` or of ``DIR/checkpoint.pt``."""
    path = Path(path)
    return path.parent if path.is_file() else path


def _evaluate(ns: argparse.Namespace) -> int:
    from .rundir import METRICS, check_output_file, run_lock
    from .diagnostics import collapse_warning
    from .runs import evaluate_run, load_run, read_metrics, write_json

    folder = _run_folder(ns.run)
    if not folder.is_dir():
        raise FileNotFoundError(f"run: no such file or folder {ns.run!r}")
    metrics_path = folder / METRICS
    check_output_file(metrics_path, "run")
    with run_lock(folder):
        run = load_run(ns.run, device=ns.device, data=ns.data, labels=ns.labels)
        _check_evaluation_time(run, ns.samples)
        metrics, problem = read_metrics(metrics_path, run)
        if problem:
            print(f"pyromix evaluate: note: {problem}; rebuilding it", file=sys.stderr)
        metrics.pop("samples_warning", None)
        chosen = {} if ns.eval_labels is None else {"eval_labels": ns.eval_labels}
        metrics.update(evaluate_run(run, ns.samples, **chosen))
        write_json(metrics_path, metrics)
    print(metrics_path.read_text(), end="")
    _warn_samples(metrics.get("samples_warning"))
    _warn(collapse_warning(metrics))
    return EXIT_OK


def _warn_samples(line: str | None, run: str = "") -> None:
    """The one-line Pareto k diagnostic, on stderr, when S is too small."""
    if line:
        print(f"pyromix: warning: {run + ': ' if run else ''}{line}", file=sys.stderr)


def _sample(ns: argparse.Namespace) -> int:
    import pyro

    from . import plots
    from .rundir import check_output_file
    from .runs import generate, load_run

    check_output_file(ns.out, "out")
    plots.check_image_path(ns.out, "out")
    run = load_run(ns.run, data=ns.data, labels=ns.labels)
    pyro.set_rng_seed(ns.seed)
    components = None if ns.component is None else [ns.component]
    means, binarized = generate(run, ns.n, components=components, categories=ns.categories)
    shape = run.dataset.image_shape
    path = plots.plot_samples(
        means,
        ns.out,
        image_shape=shape,
        binarized=binarized if shape else None,  # plotted for images only
        data=None if shape else run.dataset.test.x,
        title=f"{run.name} samples",
    )
    print(path)
    return 0


def _compare(ns: argparse.Namespace) -> int:
    from .compare import compare_points, evaluate_runs, format_comparison
    from .rundir import check_output_file, write_atomically
    from .runs import write_json

    for path, flag in ((ns.json, "--json"), (ns.arviz, "--arviz")):
        if path:
            check_output_file(path, flag)
    folders = [str(_run_folder(path)) for path in ns.runs]  # DIR or DIR/checkpoint.pt
    names, results, extras = evaluate_runs(folders, ns.samples, device=ns.device)
    rows = compare_points(names, results, extras)
    print(format_comparison(rows))
    for name, result in zip(names, results):
        _warn_samples(result.too_few_samples(), name)
    if ns.json:
        write_json(ns.json, {"samples": ns.samples, "rows": rows})
    if ns.arviz:
        from .elpd import arviz_compare

        table = arviz_compare(names, results)
        write_atomically(ns.arviz, lambda f: table.to_csv(f, index_label="run"), mode="w")
    return 0


def _list(ns: argparse.Namespace) -> int:
    from .data import DATASETS
    from .recipes import available_recipes, get_recipe

    print("models:")
    for name in available_recipes():
        print(f"  {name:<16} {get_recipe(name).description}")
    print("datasets:")
    for name, text in DATASETS.items():
        print(f"  {name:<16} {text}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pyromix`` command; returns the exit status.

    Every failure is one line on stderr: 2 for bad input, 1 for a diverged or failed run, 130
    for Ctrl-C. Set ``PYROMIX_TRACEBACK=1`` to see the traceback of an unexpected failure.
    """
    command = "pyromix"
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        if argv[:1] == ["fit"]:
            command = "pyromix fit"
        model = model_of(argv)  # its plugin loaded, so that its own flags exist
        try:
            ns = build_parser(model).parse_args(argv)
        except SystemExit as e:  # argparse: --help (0) or a usage error (2), already printed
            return int(e.code or 0)
        if model is not None:
            ns.model = model  # FILE.py:NAME, loaded once
        command = f"pyromix {ns.command}"
        if ns.plugin:
            from .recipes import load_plugin

            for module in ns.plugin:
                load_plugin(module)
        commands = {"fit": _fit, "evaluate": _evaluate, "sample": _sample, "list": _list}
        return {**commands, "compare": _compare}[ns.command](ns)
    except KeyboardInterrupt:
        from .distributed import launched_worker

        if not launched_worker():  # Ctrl-C reaches every process; rank 0 says it once
            print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USAGE_ERRORS as e:
        print(f"{command}: error: {_first_line(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:
        if os.environ.get("PYROMIX_TRACEBACK", "").strip().lower() in TRACEBACK_ON:
            raise
        print(
            f"{command}: failed: {type(e).__name__}: {_first_line(e)} "
            "(PYROMIX_TRACEBACK=1 shows where)",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
