"""Blocks that nothing uses are checked on their own: in a library, and in a spec whose
model does not use them (a typo in one is found by `check`, not on its first use)."""

from __future__ import annotations

import pytest

import mlspec
from mlspec import SpecError

MODEL = "model m {\n    input [2]\n    dense(1)\n}\n"


def messages(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(SpecError) as caught:
        mlspec.check(mlspec.parse(text, "spec.mlspec"))
    return [(d.span.line, d.span.column, d.message) for d in caught.value.diagnostics]


@pytest.mark.parametrize("model", [MODEL, ""], ids=["spec", "library"])
def test_a_block_that_uses_itself_is_an_error_at_the_use(model):
    assert messages("block loop() { dense(2) -> loop }\n" + model) == [
        (1, 28, "block 'loop' uses itself (loop -> loop)")]


@pytest.mark.parametrize("model", [MODEL, ""], ids=["spec", "library"])
def test_a_loop_through_blocks_is_one_error(model):
    text = "block a() { b }\nblock b() { repeat(2) { a } }\n" + model
    assert messages(text) == [(2, 25, "block 'a' uses itself (a -> b -> a)")]


def test_an_unused_block_with_an_undefined_name_is_an_error():
    text = "param width = 4\nblock head() { dense(widht) }\n" + MODEL
    assert messages(text) == [
        (2, 22, "undefined name 'widht'; did you mean 'width'?")]


def test_a_used_blocks_mistake_is_reported_once_at_its_use():
    text = "block head() { dense(widht) }\nmodel m {\n    input [2]\n    head\n}\n"
    found = messages(text)
    assert len(found) == 1 and "undefined name 'widht'" in found[0][2]
    assert found[0][:2] == (4, 5)


def test_unused_blocks_that_are_right_pass():
    spec = mlspec.parse("block head(n=2) { dense(n) -> relu }\nblock tail(k) { dense(k) }\n"
                        + MODEL, "spec.mlspec")
    assert mlspec.check(spec).model.output_shape == (1,)


def test_an_imported_librarys_unused_blocks_are_left_to_the_library(tmp_path):
    # the spec's own unused blocks are checked; an imported library's are checked when the
    # library is (`mlspec check lib.mlspec`), not again in every spec that imports it
    (tmp_path / "lib.mlspec").write_text("block wide() { dense(8) -> relu }\n"
                                         "block odd() { dense(widht) }\n")
    spec = tmp_path / "spec.mlspec"
    spec.write_text('import "lib.mlspec"\nblock mine() { dense(hight) }\n'
                    "model m {\n    input [2]\n    wide\n    dense(1)\n}\n")
    with pytest.raises(SpecError) as caught:
        mlspec.check(spec)
    assert [(d.span.file, d.span.line, d.message) for d in caught.value.diagnostics] == [
        (str(spec), 2, "undefined name 'hight'")]
    with pytest.raises(SpecError, match="undefined name 'widht'"):
        mlspec.check(tmp_path / "lib.mlspec")
