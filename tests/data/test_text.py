"""Item texts: entities unescaped, tags dropped, fields joined most informative first and cut at a word boundary."""

from __future__ import annotations

from cdtl.data.text import clean_text, compose_item_text, join_genres


def test_clean_text_unescapes_drops_tags_and_squeezes_whitespace():
    assert clean_text("Alien &amp; co <b>uncut</b>\n\t edition ") == "Alien & co uncut edition"
    assert clean_text(None) == "" and clean_text(float("nan")) == ""
    assert clean_text(["Tea", None, "  ", "Pot &lt;3"]) == "Tea, Pot <3"
    assert clean_text(1995) == "1995"


def test_fields_keep_their_order_and_labels_and_empty_ones_are_skipped():
    fields = [("title", "Heat (1995)"), ("Genres", ["Action", "Crime"]), ("Plot", None), ("Year", 1995)]
    assert compose_item_text(fields) == "Heat (1995). Genres: Action, Crime. Year: 1995"
    assert compose_item_text([("title", "Dune."), ("Author", "Herbert")]) == "Dune. Author: Herbert"
    assert compose_item_text([]) == ""


def test_a_budget_keeps_the_first_fields_and_cuts_at_a_word():
    fields = [("title", "Heat"), ("Genres", "Action, Crime, Thriller")]
    full = compose_item_text(fields)
    assert compose_item_text(fields, max_chars=len(full)) == full
    cut = compose_item_text(fields, max_chars=23)  # "... Action, C": the partial word goes
    assert cut == "Heat. Genres: Action," and full.startswith(cut)
    assert compose_item_text([("title", "Supercalifragilistic")], max_chars=5) == "Super"  # no space: a hard cut


def test_join_genres_skips_empty_names():
    assert join_genres(["Action", "", "Comedy"]) == "Action, Comedy"
    assert join_genres([]) == ""
