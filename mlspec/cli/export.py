"""`mlspec export` and `schema`: a validated spec as JSON, and the JSON Schema of the
spec IR (neither imports jax); and `mlspec export RUN_DIR --format stablehlo`, a trained
run's model as a portable file (see `mlspec.runtime.exporting`; this one imports jax)."""

from __future__ import annotations

import json
from pathlib import Path

from mlspec.cli.errors import EXIT_FAILURE, EXIT_SPEC_ERROR, err
from mlspec.cli.shared import SPEC_HELP, load, member_option
from mlspec.syntax.errors import located

FORMATS = ("stablehlo", "onnx")


def cmd_export(args) -> int:
    if Path(args.file).is_dir() or args.format is not None:
        return _export_run(args)
    if args.out is not None or args.member:
        err(located(args.file, "--out and --member export a run folder (`mlspec export "
                               "RUN_DIR --format stablehlo`); a spec's JSON goes to stdout"))
        return EXIT_SPEC_ERROR
    from mlspec.semantics.imports import merge_imports
    from mlspec.semantics.resolve import resolve
    from mlspec.semantics.sweep import check_spec

    spec = load(args.file)  # a SpecError is reported by main()
    if args.program:
        print(resolve(spec).model_dump_json(indent=2))
    else:  # the spec IR as written, its imports brought in: loadable wherever it lands,
        # wherever a .mlspec is, with its params, blocks and sweep (every member checked)
        if check_spec(spec) is None:  # a library: resolve says it has no model
            resolve(spec)
        print(merge_imports(spec).model_dump_json(indent=2, exclude_none=True))
    return 0


def _export_run(args) -> int:
    folder = Path(args.file)
    if args.program:
        err(located(args.file, "--program prints a spec's typed program; a run folder is "
                               "exported with --format stablehlo"))
        return EXIT_SPEC_ERROR
    if not folder.is_dir():
        err(located(args.file, "no such run folder (--format exports a run folder written "
                               "by `mlspec run`)" if not folder.exists() else
                    "--format exports a run folder written by `mlspec run`; this is a file "
                    "(`mlspec export FILE` prints a spec as JSON)"))
        return EXIT_SPEC_ERROR
    fmt = args.format or "stablehlo"
    from mlspec.runtime import exporting

    if fmt == "onnx":
        err(located(args.file, exporting.ONNX_UNAVAILABLE))
        return EXIT_SPEC_ERROR
    out = Path(args.out) if args.out else exporting.default_out(folder, fmt, args.member)
    problem = _unwritable(out, folder)
    if problem:
        err(located(str(out), problem))
        return EXIT_FAILURE
    from mlspec.runtime.reload import load_run
    from mlspec.runtime.runs import locked

    result = load_run(folder, member=args.member)  # a folder that cannot be used: exit 2
    try:
        if out.resolve().parent == folder.resolve():
            with locked(folder):  # never beside a run still writing the folder
                written = exporting.export_run(result, out)
        else:
            written = exporting.export_run(result, out)
    except OSError as exc:
        err(located(str(exc.filename or out), f"cannot write the export: "
                                               f"{exc.strerror or exc}"))
        return EXIT_FAILURE
    for path in written:
        print(f"wrote {path}")
    return 0


def _unwritable(out: Path, folder: Path) -> str | None:
    """Why the export cannot go to `out`, found before the model is loaded and lowered."""
    from mlspec.runtime.exporting import describe_path
    from mlspec.runtime.runs import RUN_FILES, VOCAB_FILE

    own = {(folder / f).resolve() for f in (*RUN_FILES, VOCAB_FILE)}
    if out.resolve() in own or describe_path(out).resolve() in own:
        return ("this is a file of the run folder itself; write the export elsewhere\n"
                "(the run would no longer load)")
    if out.is_dir():
        return "cannot write the export: a folder is in its place"
    if not out.parent.is_dir():
        return f"cannot write the export: there is no folder {out.parent}"
    return None


def add_export(sub) -> None:
    p = sub.add_parser("export", help="the validated spec as JSON; a run's model as StableHLO",
                       description="Validates a spec (every member of its sweep) and prints "
                                   "it as JSON: the spec IR as written, with its params, "
                                   "blocks and sweep and its imports brought in (which "
                                   "`check`, `run` and `import` read back), or with "
                                   "--program the typed program. Given a run folder, writes "
                                   "its trained model with its standardization as a "
                                   "StableHLO file (jax.export, any batch size), loadable "
                                   "with jax.export.deserialize without mlspec, and beside it "
                                   "FILE.json: the arguments (the model's inputs, in order; "
                                   "ids and vocabularies for categorical and text ones) and "
                                   "the outputs.")
    p.add_argument("file", metavar="FILE", help=SPEC_HELP + "; or a run folder to export "
                                                            "with --format")
    p.add_argument("--format", choices=FORMATS,
                   help="export a run folder's model: stablehlo (the default for a run "
                        "folder); onnx is not available (its converter cannot be installed "
                        "beside mlspec's dependencies)")
    p.add_argument("--out", metavar="OUT",
                   help="where the exported file goes (default: model.stablehlo in the run "
                        "folder, model-member-K.stablehlo for --member K); OUT.json beside it")
    member_option(p)
    p.add_argument("--json", action="store_true", default=True,
                   help="the spec IR in JSON, as written, imports brought in (the "
                        "default)")
    p.add_argument("--program", action="store_true",
                   help="the typed program instead: catalogue entries, shapes, data facts")
    p.set_defaults(fn=cmd_export)


def cmd_schema(args) -> int:
    from mlspec.syntax.ir import Spec

    print(json.dumps(Spec.model_json_schema(), indent=2))
    return 0


def add_schema(sub) -> None:
    p = sub.add_parser("schema", help="the JSON Schema of the spec IR",
                       description="Prints the JSON Schema of the spec IR, the form of the "
                                   ".json specs that `export` writes and the commands read.")
    p.set_defaults(fn=cmd_schema)
