"""Folded name keys: one spelling for names typed with or without accents and umlauts."""

from __future__ import annotations

import unicodedata

#: Spellings that stand for the same letter in Swiss registers (Müller = Mueller, Strauß = Strauss).
_DIGRAPHS = (("ae", "a"), ("oe", "o"), ("ue", "u"))
_LETTERS = {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "ı": "i"}


def fold(text: str) -> str:
    """Lower-case letters and digits without accents, umlauts and their e-spellings."""
    lowered = text.casefold()
    spelled = "".join(_LETTERS.get(char, char) for char in lowered)
    # Decompose, then drop the combining marks: é -> e, ä -> a, ç -> c.
    bare = "".join(
        char for char in unicodedata.normalize("NFKD", spelled) if not unicodedata.combining(char)
    )
    # "ae" and "ä" must meet: ä already became "a", so fold "ae" to "a" as well.
    for digraph, letter in _DIGRAPHS:
        bare = bare.replace(digraph, letter)
    words = "".join(char if char.isalnum() else " " for char in bare).split()
    return " ".join(words)


def name_key(family_name: str, given_names: str) -> str:
    """The folded search key of a person's names: family name, a bar, given names."""
    return f"{fold(family_name)}|{fold(given_names)}"
