"""text-extractor's guess of a text's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventfn._loader import load_function

ROOT = Path(__file__).resolve().parents[2]
load_function("text-extractor", ROOT / "functions")
from eventfn_functions.text_extractor.language import guess_language  # noqa: E402

SAMPLES = {
    "en": "The results were good and we are happy with the work that has been done for them.",
    "de": "Die Ergebnisse sind gut und wir sind mit der Arbeit, die für sie getan wurde, sehr "
    "zufrieden.",
    "fr": "Les résultats sont bons et nous sommes contents du travail qui a été fait pour eux.",
    "es": "Los resultados son buenos y estamos contentos con el trabajo que se ha hecho para "
    "ellos.",
    "it": "I risultati sono buoni e siamo contenti del lavoro che è stato fatto per loro e per "
    "il gruppo.",
}


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_the_language_guess(language: str) -> None:
    assert guess_language(SAMPLES[language]) == language


@pytest.mark.parametrize("text", ["", "Invoice 2026-11 ACME GmbH 1234", "Thanks!", "la de en il"])
def test_thin_evidence_is_no_language(text: str) -> None:
    assert guess_language(text) is None
