"""Cleaning a text before it is tokenized: the one step that training, evaluation and every
scorer share. Nothing here imports ``datasets`` (a first prediction need not pay for it)."""

from __future__ import annotations

import re

_HTML_BREAK = re.compile(r"<br\s*/?>", flags=re.IGNORECASE)
SURROGATES = re.compile("[\ud800-\udfff]")  # lone halves of a UTF-16 pair: not encodable


def clean_text(text: str) -> str:
    """Replace HTML line breaks (``<br />``) by spaces, and code points that no encoding can
    hold (lone surrogates, which valid JSON can carry as ``\\ud800``) by U+FFFD."""
    return SURROGATES.sub("\ufffd", _HTML_BREAK.sub(" ", text))


# A text is cut to its first MAX_CHARS characters before anything else, so that a very long
# input (say 1 MB) keeps time and memory bounded (IMDB's longest review has ~14,000).
MAX_CHARS = 100_000


def cleaned(texts) -> list[str]:
    """Each text cut to :data:`MAX_CHARS` characters and cleaned (:func:`clean_text`), as every
    scorer reads it."""
    return [clean_text(text[:MAX_CHARS]) for text in texts]
