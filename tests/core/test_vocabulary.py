"""The vocabulary states each trigger and marker word twice, as typing needs: once in its
`Literal` type and once as a named constant. These tests keep the two from drifting apart."""

from __future__ import annotations

import pytest

from stream.core import vocabulary

CONSTANTS = {
    name: value
    for name, value in vars(vocabulary).items()
    if name.isupper() and isinstance(value, str)
}


@pytest.mark.parametrize(
    "words", [vocabulary.TRIGGER_NAMES, vocabulary.MARKER_KINDS], ids=["triggers", "markers"]
)
def test_every_word_of_a_type_has_its_constant(words: tuple[str, ...]) -> None:
    assert {word: CONSTANTS.get(word.upper()) for word in words} == {w: w for w in words}


def test_every_constant_is_a_word_of_a_type_named_for_itself() -> None:
    # TRIGGER_ERROR is the one word outside the types: no policy names it (module comment).
    words = {*vocabulary.TRIGGER_NAMES, *vocabulary.MARKER_KINDS, vocabulary.TRIGGER_ERROR}
    assert {name: value for name, value in CONSTANTS.items() if value not in words} == {}
    assert all(name == value.upper() for name, value in CONSTANTS.items())
