"""`mlspec predict`, `evaluate` and `plot`: a trained run folder used again."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from mlspec.cli.errors import EXIT_FAILURE, EXIT_SPEC_ERROR, err
from mlspec.cli.shared import RUN_DIR_HELP, member_option
from mlspec.cli.tables import metrics_table
from mlspec.syntax.errors import located

DATA_HELP = ("rows to predict: a split of the run's own data (train, valid or test), a .csv, "
             ".parquet or .npz file read as the run's training data was, or a data source "
             "call such as 'hill(n=100, seed=5)'")
PREDICT_COLUMNS = """\
output: a CSV table, one row per row of DATA, in its order:
  prediction            for a run of class targets: the predicted class, by its name
                        where the run's targets had names (a CSV's text labels, iris'
                        species), else by its id
  prediction_0, ...     for a run of real targets: the predicted value of each target
  proba_NAME, ...       with --proba, for a run of class targets: each class's
                        probability (softmax of the logits, or sigmoid of the one logit
                        of sigmoid_binary_cross_entropy), named as the prediction column
                        names the class"""


def _saved(args):
    from mlspec.runtime.reload import load_run

    return load_run(args.run_dir, member=args.member)


def cmd_predict(args) -> int:
    from mlspec.runtime.predict import predictions_frame, rows_for

    result = _saved(args)
    heads = result.trainer.heads
    if args.proba and heads:  # several outputs: those with probabilities get columns
        losses = {head: result.trainer.outputs.losses[head] for head in heads}
        if not any(loss.has_probabilities for loss in losses.values()):
            kinds = ", ".join(f"{head}: {loss.kind}" for head, loss in losses.items())
            err(located(args.run_dir, "--proba needs an output with class probabilities; "
                        f"none of this run's has them (its losses are {kinds})"))
            return EXIT_SPEC_ERROR
    elif args.proba and result.program.data.info.target != "class":
        err(located(args.run_dir, "--proba needs a run of class targets; this run "
                    f"predicts real values (its loss is {result.trainer.data_loss.kind})"))
        return EXIT_SPEC_ERROR
    elif args.proba and not result.trainer.data_loss.has_probabilities:
        err(located(args.run_dir, "--proba needs class probabilities; this run's loss "
                    f"({result.trainer.data_loss.kind}) gives scores, not logits"))
        return EXIT_SPEC_ERROR
    x, _ = rows_for(result, args.data, need_targets=False)
    frame = predictions_frame(result, x, proba=args.proba)
    text = frame.to_csv(index=False)
    if args.out:
        from mlspec.files import atomic_write
        from mlspec.runtime.runs import RUN_FILES

        if Path(args.out).resolve() in {(Path(args.run_dir) / f).resolve() for f in RUN_FILES}:
            err(located(args.out, "this is a file of the run folder itself; write the "
                                  "predictions elsewhere\n(the run would no longer load)"))
            return EXIT_FAILURE
        try:
            atomic_write(Path(args.out), text)
        except OSError as exc:
            err(located(args.out, f"cannot write the predictions: {exc.strerror or exc}"))
            return EXIT_FAILURE
    else:
        sys.stdout.write(text)
    return 0


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predictions of a trained run for new rows",
                       description="Predictions of a trained run for the rows of DATA.",
                       epilog=PREDICT_COLUMNS,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    p.add_argument("--out", help="write the predictions CSV here instead of stdout")
    p.add_argument("--proba", action="store_true",
                   help="also write each class's probability (classification runs only)")
    member_option(p)
    p.set_defaults(fn=cmd_predict)


def cmd_evaluate(args) -> int:
    from rich.console import Console

    from mlspec.runtime import confusion
    from mlspec.runtime.predict import evaluate, rows_for

    result = _saved(args)
    data = args.data
    if data is None:
        data = "test" if "test" in result.program.data.splits else "valid"
    x, y = rows_for(result, data, need_targets=True)
    metrics = evaluate(result, x, y)
    if result.evaluated_at is not None and result.evaluated_at != result.params_step:
        why = "it diverged there and trained on to the end of that chunk" \
            if result.status == "diverged" else \
            "a second signal dropped the chunk in progress before these were evaluated"
        err(f"note: these are the metrics of the parameters saved in {args.run_dir}, of "
            f"step {result.params_step};\nits metrics.json holds those of step "
            f"{result.evaluated_at}\n({why})")
    matrix = confusion.confusion(result, x, y) if confusion.wanted(result) else None
    label = data if data in ("train", "valid", "test") else "data"
    if args.json:  # strict JSON: a NaN or infinite metric is null
        shown: dict = {k: v if math.isfinite(v) else None for k, v in metrics.items()}
        if matrix is not None:
            shown["confusion_matrix"] = {"classes": list(matrix.columns),
                                         "counts": matrix.to_numpy().tolist()}
        print(json.dumps(shown, indent=2))
    else:
        Console().print(metrics_table({label: metrics}))
        if matrix is not None:
            Console().print(confusion.rich_table(matrix, f"confusion matrix ({label})"))
    return 0


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a trained run on its test split or DATA",
                       description="Measures the metrics of a trained run's saved parameters "
                                   "on DATA, or on the run's own test split (else its valid "
                                   "split), and prints them as a table (or JSON).")
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    p.add_argument("data", nargs="?", metavar="DATA",
                   help="as for predict, with targets; default: the run's test split, else "
                        "its valid split")
    p.add_argument("--json", action="store_true", help="print JSON")
    member_option(p)
    p.set_defaults(fn=cmd_evaluate)


def cmd_plot(args) -> int:
    """Draws the plots of a run folder; for the best member (the default) this also
    clears the manifest's `plots_missing`. A member other than the best gets its own
    files (`decision_regions-member-K.png`)."""
    from mlspec.runtime.plots import draw_all
    from mlspec.runtime.reading import full_history, mark_plots_drawn
    from mlspec.runtime.runs import locked

    folder = Path(args.run_dir)
    result = _saved(args)
    history, member_columns = full_history(folder)
    with locked(folder):
        suffix = f"-member-{args.member}" if args.member else ""
        written, _ = draw_all(result, folder, history=history, member_columns=member_columns,
                              suffix=suffix)
        if not args.member:
            mark_plots_drawn(folder, [])
    for path in written:
        print(f"wrote {path}")
    return 0


def add_plot(sub) -> None:
    p = sub.add_parser("plot", help="redraw the plots of a run folder",
                       description="Draws every plot of a run folder again, from its saved "
                                   "history and state, into the folder (also those that a "
                                   "signal left out); --member draws a member's own.")
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    member_option(p)
    p.set_defaults(fn=cmd_plot)
