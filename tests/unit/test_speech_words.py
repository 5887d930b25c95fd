"""The test helper that turns a transcript into comparable words."""

from tests.support.speech import words


def test_words_fold_case_punctuation_and_small_numbers() -> None:
    assert words("The lazy dog's bone, 4!") == ["the", "lazy", "dogs", "bone", "four"]


def test_a_number_glued_to_a_word_is_split_from_it() -> None:
    assert words("Code42 and 7up") == ["code", "42", "and", "seven", "up"]
