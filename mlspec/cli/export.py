"""`mlspec export` and `schema`: a validated spec as JSON, and the JSON Schema of the
spec IR (neither imports jax)."""

from __future__ import annotations

import json

from mlspec.cli.shared import SPEC_HELP, load


def cmd_export(args) -> int:
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


def add_export(sub) -> None:
    p = sub.add_parser("export", help="the validated spec as JSON",
                       description="Validates a spec (every member of its sweep) and prints "
                                   "it as JSON: the spec IR as written, with its params, "
                                   "blocks and sweep and its imports brought in (which "
                                   "`check`, `run` and `import` read back), or with "
                                   "--program the typed program.")
    p.add_argument("file", metavar="FILE", help=SPEC_HELP)
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
