"""The ``protege`` command: run a recipe, or one stage (train, distill) from flags.

Errors a user can cause print one line on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from importlib import resources
from pathlib import Path

from protege.errors import ConfigError, ProtegeError

EXIT_USER_ERROR = 2


def bundled_recipe(name: str) -> Path | None:
    """A recipe shipped with protege (``demo``, ``mnist1d``), found by name."""
    candidate = resources.files("protege") / "recipes" / f"{name}.yaml"
    return Path(str(candidate)) if candidate.is_file() else None


def _recipe_path(given: str) -> Path:
    path = Path(given)
    if path.is_file():
        return path
    bundled = bundled_recipe(given.removesuffix(".yaml"))
    if bundled is not None and not path.parent.name:
        return bundled
    raise ConfigError(f"recipe not found: {given}")


def _options(pairs: list[str] | None, flag: str) -> dict:
    """``key=value`` pairs (values parsed as YAML: numbers, lists, booleans) into a dict."""
    from protege.config import parse_value

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} {pair!r} must look like name=value")
        out[key] = parse_value(value, f"{flag} {pair!r}")
    return out


def _trust(args: argparse.Namespace, source: str) -> dict:
    """``trust_remote_code: true`` for a Hugging Face or saved model when the user passed --trust-remote-code."""
    return {"trust_remote_code": True} if args.trust_remote_code and source.startswith(("hf:", "run:")) else {}


def _train_block(args: argparse.Namespace) -> dict:
    block = {
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "schedule": args.schedule,
        "weight_decay": args.weight_decay,
        "patience": args.patience,
    }
    return {k: v for k, v in block.items() if v is not None}


def _data_block(args: argparse.Namespace) -> dict:
    block = {"source": args.data, "options": _options(args.data_option, "--data-option")}
    if args.val_fraction is not None:
        block["val_fraction"] = args.val_fraction
    return block


def cmd_run(args: argparse.Namespace) -> int:
    from protege.pipeline import run_recipe
    from protege.recipe_reader import load_recipe

    recipe = load_recipe(_recipe_path(args.recipe), args.set)
    if args.dry_run:
        from protege.dry_run import describe

        describe(recipe)
        return 0
    run_recipe(recipe, args.output, resume=args.resume, overwrite=args.overwrite)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from protege.pipeline import run_recipe
    from protege.recipe_reader import load_recipe

    path = bundled_recipe("demo")
    assert path is not None, "the demo recipe ships with the package"
    recipe = load_recipe(path, args.set)
    # the default runs/demo is replaced by each demo (when protege made it); a folder the user names is not
    run_recipe(recipe, args.output, overwrite=args.overwrite or args.output is None)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from protege.pipeline import run_recipe
    from protege.recipe_reader import recipe_from_dict

    raw = {
        "name": args.name or "train",
        "seed": args.seed,
        "data": _data_block(args),
        "student": {
            "model": {"source": args.model, **_options(args.option, "--option"), **_trust(args, args.model)},
            "train": _train_block(args),
            "objective": {"name": "ce", "label_smoothing": args.label_smoothing},
        },
    }
    recipe = recipe_from_dict(raw, origin="protege train")
    run_recipe(recipe, args.output, resume=args.resume, overwrite=args.overwrite)
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from protege.pipeline import run_recipe
    from protege.recipe_reader import recipe_from_dict

    raw = {
        "name": args.name or "distill",
        "seed": args.seed,
        "data": _data_block(args),
        "teacher": {"model": {"source": args.teacher, **_trust(args, args.teacher)}},
        "student": {
            "model": {
                "source": args.student,
                **_options(args.student_option, "--student-option"),
                **_trust(args, args.student),
            },
            "train": _train_block(args),
            "objective": {"name": "kd", "temperature": args.temperature, "alpha": args.alpha},
            "baseline": args.baseline,
            "teacher_cache": args.teacher_cache,
        },
    }
    if args.transfer:
        raw["transfer"] = {"source": args.transfer, "options": _options(args.transfer_option, "--transfer-option")}
    recipe = recipe_from_dict(raw, origin="protege distill")
    run_recipe(recipe, args.output, resume=args.resume, overwrite=args.overwrite)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from protege.console import out_console
    from protege.export import export_model

    if args.quantize is not None:
        return _export_int8(args)
    result = export_model(
        args.model,
        args.format,
        stage=args.stage,
        output=args.output,
        tolerance=args.tolerance,
        trust_remote_code=args.trust_remote_code,
    )
    check = f"max |difference| from PyTorch {result.max_abs_diff:.2g} on {result.samples}"
    out_console.print(f"{result.path}  ({result.format}; {check})", markup=False)
    return 0


def _export_int8(args: argparse.Namespace) -> int:
    """``protege export --quantize int8``: the int8 file, then float and int8 side by side."""
    from protege.console import out_console
    from protege.quantize import export_int8
    from protege.report.quantization import quantization_table

    result = export_int8(
        args.model,
        args.quantize,
        format=args.format,
        stage=args.stage,
        output=args.output,
        max_drop=args.max_drop,
        threads=args.threads,
        tolerance=args.tolerance,
        trust_remote_code=args.trust_remote_code,
    )
    out_console.print(quantization_table(result.measures))
    where = f"; added to {result.report}" if result.report else ""
    out_console.print(f"{result.path}  (int8 ONNX; measurements in {result.measures_path}{where})", markup=False)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from protege.predict import predict, print_predictions

    predictions = predict(args.model, args.inputs, top_k=args.top_k, trust_remote_code=args.trust_remote_code)
    print_predictions(predictions, as_json=args.json)

    return 0


def cmd_rank(args: argparse.Namespace) -> int:
    import json

    from protege.rank import parse_candidates, print_ranking, rank_models

    text_options = {"max_length": args.max_length} if args.max_length else {}
    candidates = [
        (source, {**(text_options if source.startswith("hf:") else {}), **options, **_trust(args, source)})
        for source, options in parse_candidates(args.models)
    ]
    ranking = rank_models(
        candidates,
        args.data,
        _options(args.data_option, "--data-option"),
        limit=args.limit,
        held_out=args.held_out,
        val_fraction=args.val_fraction,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(ranking.to_dict(), indent=2))
    else:
        print_ranking(ranking)

    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from protege.config import describe_validation_error
    from protege.unlearning.config import ForgetConfig
    from protege.unlearning.forget_command import forget_run

    named = {"file": args.examples, "class": args.class_name, "fraction": args.fraction}
    given = {key: value for key, value in named.items() if value is not None}
    if len(given) != 1:
        raise ConfigError("protege forget: name the examples with one of --examples FILE, --class or --fraction")
    try:
        request = ForgetConfig.model_validate(given)
    except ValidationError as exc:
        raise ConfigError(f"protege forget: {describe_validation_error(exc, ForgetConfig)}") from None
    forget_run(
        Path(args.run),
        request,
        args.method,
        Path(args.output) if args.output else None,
        overwrite=args.overwrite,
        epochs=args.epochs,
        lr=args.lr,
        retrain=args.retrain,
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from protege.config import EvaluateConfig, describe_validation_error
    from protege.report.standalone import DataRequest, evaluate_saved

    try:
        config = EvaluateConfig(
            latency=not args.no_latency,
            latency_batch_sizes=args.batch_sizes or [1, 64],
            threads=args.threads,
            html=not args.no_html,
        )
    except ValidationError as exc:
        raise ConfigError(f"protege evaluate: {describe_validation_error(exc, EvaluateConfig)}") from None
    data = None
    if args.data is not None:
        options = _options(args.data_option, "--data-option")
        data = DataRequest(args.data, options, args.test_fraction, args.seed)
    output = Path(args.output) if args.output else None
    evaluate_saved(
        args.model, data, config, teacher=args.teacher, output_dir=output, trust_remote_code=args.trust_remote_code
    )
    return 0


def _add_trust_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let Hugging Face model files run the Python code they name (auto_map); only for files you trust",
    )


def _add_run_dir_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", help="run directory (default: runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an earlier run there (removes only the files protege wrote)"
    )


def _add_stage_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="digits, mnist1d, csv:path or npz:path")
    p.add_argument("--data-option", action="append", metavar="NAME=VALUE", help="data source option (repeatable)")
    p.add_argument("--val-fraction", type=float, help="share of train held out for validation (default 0.1)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", choices=["adamw", "sgd"])
    p.add_argument("--schedule", choices=["constant", "cosine", "step", "onecycle"])
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--patience", type=int, help="early stopping after this many epochs without improvement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="run name (default directory runs/<name>)")
    _add_trust_flag(p)
    _add_run_dir_flags(p)


def build_parser() -> argparse.ArgumentParser:
    """The ``protege`` command and its subcommands (each built by its own function below)."""
    from protege import __version__

    parser = argparse.ArgumentParser(prog="protege", description="Move knowledge between neural networks.")
    parser.add_argument("--version", action="version", version=f"protege {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _run_parser,
        _demo_parser,
        _train_parser,
        _distill_parser,
        _export_parser,
        _predict_parser,
        _rank_parser,
        _evaluate_parser,
        _forget_parser,
    ):
        add(sub)
    return parser


def _run_parser(sub) -> None:
    """The ``protege run`` command's arguments."""
    p = sub.add_parser("run", help="run a recipe (teacher, student, evaluate) into one run directory")
    p.add_argument("recipe", help="recipe file, or the name of a bundled recipe (demo, mnist1d, text_minilm)")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a recipe field")
    p.add_argument("--dry-run", action="store_true", help="print what would run, and stop")
    _add_run_dir_flags(p)
    p.set_defaults(func=cmd_run)


def _demo_parser(sub) -> None:
    """The ``protege demo`` command's arguments."""
    p = sub.add_parser("demo", help="distill a CNN into a small MLP on scikit-learn's digits (about a minute)")
    p.add_argument("--output", "-o", help="run directory (default: runs/demo, replaced by each demo)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory given with -o")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a recipe field")
    p.set_defaults(func=cmd_demo)


def _train_parser(sub) -> None:
    """The ``protege train`` command's arguments."""
    p = sub.add_parser("train", help="train one model with cross-entropy")
    p.add_argument("--model", required=True, help="mlp, cnn1d, cnn2d, resnet or run:path")
    p.add_argument("--option", action="append", metavar="NAME=VALUE", help="model option, e.g. hidden=64")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    _add_stage_flags(p)
    p.set_defaults(func=cmd_train)


def _distill_parser(sub) -> None:
    """The ``protege distill`` command's arguments."""
    p = sub.add_parser("distill", help="distill a trained teacher into a student (Hinton KD)")
    p.add_argument("--teacher", required=True, help="a trained model: run:path")
    p.add_argument("--student", required=True, help="mlp, cnn1d, cnn2d, resnet or run:path")
    p.add_argument("--student-option", action="append", metavar="NAME=VALUE", help="student model option")
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.9, help="weight of the soft-target loss")
    p.add_argument("--transfer", help="unlabeled inputs for the teacher to label (a data source)")
    p.add_argument("--transfer-option", action="append", metavar="NAME=VALUE")
    p.add_argument("--baseline", action="store_true", help="also train the student alone, for comparison")
    p.add_argument("--teacher-cache", choices=["auto", "memory", "disk", "off"], default="auto")
    _add_stage_flags(p)
    p.set_defaults(func=cmd_distill)


def _export_parser(sub) -> None:
    """The ``protege export`` command's arguments."""
    p = sub.add_parser("export", help="write a trained model as safetensors, ONNX or TorchScript (checked)")
    p.add_argument("model", help="a run directory (its final model), a stage directory or a model directory")
    p.add_argument("--format", "-f", choices=["safetensors", "onnx", "torchscript"], default="onnx")
    p.add_argument("--stage", help="teacher, student_baseline or student (default: the run's final model)")
    p.add_argument("--output", "-o", help="file to write (default: <stage>/export/model.<onnx|pt|safetensors>)")
    p.add_argument(
        "--tolerance", type=float, default=1e-4, help="largest difference from PyTorch, relative to the logits"
    )
    p.add_argument(
        "--quantize", metavar="int8", help="write int8 ONNX (onnxruntime dynamic quantization), measured against float"
    )
    p.add_argument(
        "--max-drop",
        type=float,
        default=0.01,
        help="with --quantize: refuse when the test metric (accuracy) drops by more than this (absolute; 0.01)",
    )
    p.add_argument("--threads", type=int, default=1, help="with --quantize: CPU threads for latency (default 1)")
    _add_trust_flag(p)
    p.set_defaults(func=cmd_export)


def _predict_parser(sub) -> None:
    """The ``protege predict`` command's arguments."""
    p = sub.add_parser("predict", help="top classes with probabilities for CSV rows, text lines or .npy/.npz arrays")
    p.add_argument("model", help="a run or model directory, or an exported .onnx, .pt or .safetensors file")
    p.add_argument("inputs", nargs="+", help=".csv (feature or text columns), .txt (one text per line), .npy, .npz")
    p.add_argument("--top-k", type=int, default=3, help="classes to show per input")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_trust_flag(p)
    p.set_defaults(func=cmd_predict)


def _rank_parser(sub) -> None:
    """The ``protege rank`` command's arguments."""
    p = sub.add_parser("rank", help="score how well candidate models' features fit a task, before training")
    p.add_argument(
        "--models",
        required=True,
        help="comma-separated model sources, options in brackets: mlp[hidden=64],timm:resnet18,hf:DIR,run:PATH",
    )
    p.add_argument("--data", required=True, help="a data source (digits, csv:path, bbc_news, ...)")
    p.add_argument("--data-option", action="append", metavar="NAME=VALUE", help="data source option (repeatable)")
    p.add_argument("--limit", type=int, default=2000, help="at most this many train and held-out examples")
    p.add_argument("--held-out", choices=["val", "test"], default="val", help="split the accuracies are measured on")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of train held out as val (default 0.2)")
    p.add_argument("--max-length", type=int, help="token length for hf: candidates (default 128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    _add_trust_flag(p)
    p.set_defaults(func=cmd_rank)


def _forget_parser(sub) -> None:
    """The ``protege forget`` command's arguments."""
    p = sub.add_parser("forget", help="unlearn training examples from a finished run, into a new run directory")
    p.add_argument("run", help="the run directory whose model forgets (it is only read)")
    p.add_argument("--examples", help="a text file of the source rows (ids) to forget, one per line")
    p.add_argument("--class", dest="class_name", help="forget every training example of this class")
    p.add_argument("--fraction", type=float, help="forget this share of the training examples, at random")
    p.add_argument(
        "--method",
        default="finetune",
        help="finetune (default), neggrad, random_label, scrub, bad_teacher, or sisa (exact: a run trained "
        "with shards)",
    )
    p.add_argument("--epochs", type=int, help="epochs of the approximate method (default 5)")
    p.add_argument("--lr", type=float, help="learning rate of the method (default: the run's)")
    p.add_argument(
        "--retrain", action="store_true", help="also retrain without the examples, the reference to compare with"
    )
    p.add_argument("--output", "-o", help="the new run directory (default: <run>-forget-<method> beside it)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory given with -o")
    p.set_defaults(func=cmd_forget)


def _evaluate_parser(sub) -> None:
    """The ``protege evaluate`` command's arguments."""
    p = sub.add_parser("evaluate", help="score saved models: quality, agreement with a teacher, cost, fairness")
    p.add_argument("model", help="a run directory (every stage) or a model directory (run:path also accepted)")
    p.add_argument("--data", help="data source to score on (default for a run directory: the run's own test split)")
    p.add_argument("--data-option", action="append", metavar="NAME=VALUE", help="data source option (repeatable)")
    p.add_argument(
        "--test-fraction",
        type=float,
        help="test share if the source has no test split (default: the models' own split of it, else 0.2)",
    )
    p.add_argument(
        "--seed", type=int, help="seed of the test split if the source has none (default: the models' own, else 0)"
    )
    p.add_argument("--teacher", help="a model to compare with (run or model directory)")
    p.add_argument("--output", "-o", help="write report.json and report.html into this folder")
    p.add_argument("--no-latency", action="store_true", help="skip the CPU latency measurements")
    p.add_argument("--batch-sizes", type=int, nargs="+", metavar="N", help="latency batch sizes (default 1 64)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for latency (default 1)")
    p.add_argument("--no-html", action="store_true", help="write report.json only")
    _add_trust_flag(p)
    p.set_defaults(func=cmd_evaluate)


def one_line(message: str) -> str:
    """A message kept on one line: line breaks that came with user text (a file name, a column or key
    named with a newline) are shown escaped, as repr would."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ProtegeError as exc:
        print(f"protege: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("protege: interrupted; continue with --resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head or less, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" writing {one_line(str(exc.filename))}" if exc.filename else ""
        print(
            f"protege: error: disk full{where}; files are written atomically, so nothing is half-written: "
            "free some space and continue with --resume",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
