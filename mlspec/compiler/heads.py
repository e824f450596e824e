"""Several outputs ("heads") in training: each data term of the loss on its output and
that output's target, and each metric `OUTPUT.METRIC` on them (LANGUAGE.md v2, "Graph
models", Outputs). The model's outputs and the targets are dicts by output name."""

from __future__ import annotations

from mlspec.catalog.metrics import METRICS, SplitInputs


class Heads:
    """The outputs of a program whose data has several targets, in the data's order."""

    def __init__(self, program):
        train, info = program.train, program.data.info
        self.names = tuple(t.name for t in info.outputs)
        self.metrics = [(m.output, m.name, m.arguments) for m in train.metrics
                        if m.output is not None and METRICS.get(m.name).scope == "split"]
        self.losses = {name: train.output_loss(name) for name in self.names}
        """Each output's first data term, which makes its predictions."""
        self.classes = {name: info.target_info(name).classes for name in self.names}

    @property
    def split_metrics(self) -> list[str]:
        """The columns of each split: the whole weighted loss, then `OUTPUT.METRIC`."""
        return ["loss"] + [f"{head}.{name}" for head, name, _ in self.metrics]

    def loss(self, terms, out, y, params):
        """The weighted sum of the terms, each data term on its output (a regulariser
        reads neither)."""
        first = self.names[0]
        return sum(term.weight * term.loss.value(out[term.output or first],
                                                 y[term.output or first], params)
                   for term in terms)

    def inputs(self, out, y, loss, head: str) -> SplitInputs:
        """What the metrics of output `head` are computed from."""
        data_loss = self.losses[head]
        return SplitInputs(out=out[head], y=y[head], pred=data_loss.predict(out[head]),
                           loss=loss, data_loss=data_loss, classes=self.classes[head])

    def metrics_of(self, out, y, loss) -> dict:
        row = {"loss": loss}
        for head, name, arguments in self.metrics:
            row[f"{head}.{name}"] = METRICS.get(name).compute(self.inputs(out, y, loss, head),
                                                              arguments)
        return row
