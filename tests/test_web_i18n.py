"""Languages of the pages: German by default, French and English complete and compiled."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.factories import login, new_case, post, set_passwords

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "dossier_service" / "translations"
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "_l": None,
    "lazy_gettext": None,
    "N_": None,
}


def _source_messages() -> set[str]:
    """Every text the templates and web views mark for translation (German source)."""
    found: set[str] = set()
    method_map = [
        ("dossier_service/web/**.py", "python"),
        ("dossier_service/labels.py", "python"),
        ("dossier_service/templates/**.html", "jinja2"),
    ]
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=method_map, keywords=KEYWORDS
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _messages(catalog) -> dict[str, str | tuple[str, ...]]:
    """msgid (the singular of a plural) → translation, as comparable values."""
    result: dict[str, str | tuple[str, ...]] = {}
    for m in catalog:
        if not m.id:
            continue
        key = m.id[0] if isinstance(m.id, tuple | list) else m.id
        result[key] = tuple(m.string) if isinstance(m.string, tuple | list) else m.string
    return result


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_text_is_translated_and_the_compiled_catalogue_is_current(language):
    po_path = TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as handle:
        po = read_po(handle)
    with (po_path.with_suffix(".mo")).open("rb") as handle:
        mo = read_mo(handle)
    translated = {(m.id[0] if isinstance(m.id, tuple) else m.id): m.string for m in po if m.id}
    missing = sorted(_source_messages() - set(translated))
    assert missing == [], f"not in the {language} catalogue: {missing[:5]}"
    empty = [k for k, v in translated.items() if not (all(v) if isinstance(v, tuple) else v)]
    assert empty == []
    compiled = _messages(mo)
    assert compiled == translated, "run: pybabel compile -d dossier_service/translations"


def test_german_by_default_french_on_request_and_swiss_dates(client, world, container):
    set_passwords(container, "canton")
    case = new_case(client, world)
    login(client, "canton")
    german = client.get(f"/cases/{case['id']}").get_data(as_text=True)
    assert '<html lang="de">' in german and "Staatsangehörigkeit" in german
    assert "01.03.2025" in german
    switched = post(client, "/language", {"lang": "fr", "next": f"/cases/{case['id']}"})
    assert switched.headers["Location"] == f"/cases/{case['id']}"
    french = client.get(f"/cases/{case['id']}").get_data(as_text=True)
    assert '<html lang="fr">' in french and "Nationalité" in french
    assert "Staatsangehörigkeit" not in french and "01.03.2025" in french
    post(client, "/language", {"lang": "xx"})
    still = client.get("/cases").get_data(as_text=True)
    assert '<html lang="fr">' in still and "Mes dossiers" in still
    post(client, "/language", {"lang": "en"})
    assert "My cases" in client.get("/cases").get_data(as_text=True)
