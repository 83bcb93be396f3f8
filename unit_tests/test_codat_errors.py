"""Codat's "previously been processed" sentence is read once: which ids it names."""

from destination_codat_expenses.codat.errors import already_processed_ids, names_itself

A = "0f8fad5b-d9cb-469f-a165-70867728950e"
B = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def test_the_sentence_names_its_ids_in_lower_case():
    text = f"One or more transactions have previously been processed: {A.upper()}, {B}"
    assert already_processed_ids(text) == {A, B}


def test_other_sentences_name_nothing():
    assert already_processed_ids(f"Account {A} is archived") == set()
    assert already_processed_ids(None) == set()
    assert already_processed_ids("") == set()


def test_an_id_before_the_phrase_is_not_named():
    assert already_processed_ids(f"Sync {A}: one or more have previously been processed: {B}") == {
        B
    }


def test_a_5080_item_names_itself_only_when_its_own_id_is_named():
    message = f"Not written: One or more transactions have previously been processed: {A}"
    assert names_itself(A, message)
    assert not names_itself(B, message)
    assert names_itself(A.upper(), message)
