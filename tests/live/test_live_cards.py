"""Placeholder cards and the last-output slot."""

from __future__ import annotations

import numpy as np

from bgcam.live.cards import Cards, LastOutput, make_card


def test_a_card_is_the_last_output_blurred_and_darkened_with_text() -> None:
    base = np.full((180, 320, 3), 200, np.uint8)
    card = make_card("paused", (320, 180), base)
    assert card.shape == (180, 320, 3)
    assert card[5, 5].max() == round(200 * 0.6)  # darkened away from the text
    assert card[85:95, 100:220].max() == 255  # white text in the middle
    grey = make_card("camera unavailable", (320, 180), None)
    assert grey[5, 5].max() == 40


def test_cards_are_made_once_per_text_and_output() -> None:
    last = LastOutput()
    cards = Cards((320, 180), last)
    first = cards.card("paused")
    assert cards.card("paused") is first  # cached: no new card per tick
    seq = last.seq
    assert cards.card("camera unavailable") is not first
    assert last.seq > seq  # readers (the web preview) see that the content changed
    last.update(lambda: np.zeros((180, 320, 3), np.uint8))
    assert cards.card("camera unavailable") is not first


def test_last_output_copies_unless_asked_not_to() -> None:
    last = LastOutput()
    assert last.get() == (None, 0)
    buf = np.zeros((2, 2, 3), np.uint8)
    last.update(lambda: buf)
    copy, seq = last.get()
    live, _ = last.get(copy=False)
    assert seq == 1 and live is buf and copy is not buf
    buf[:] = 9
    assert copy is not None and copy.max() == 0
