"""A cheap language guess (en, de, fr, es, it) from stop words; None when unsure.

The first `MAX_WORDS` words of the text are matched against about 30 very frequent function
words per language. The language with the most hits wins if it has at least `MIN_HITS` hits,
they are at least `MIN_SHARE` of the words, and it beats the runner-up by `MIN_LEAD`; otherwise
the answer is None. Short texts, lists of names or numbers and mixed-language documents are
therefore None rather than a guess. Words shared by several languages ("la", "de", "in") count
for each of them; the distinctive ones decide.
"""

from __future__ import annotations

import re

MAX_WORDS = 2000
MIN_HITS = 5
MIN_SHARE = 0.15
MIN_LEAD = 1.5
_WORD = re.compile("[^\\W\\d_]+(?:['\u2019][^\\W\\d_]+)?")


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


STOP_WORDS: dict[str, frozenset[str]] = {
    "en": _words(
        "the and of to is that it was for with this are be have not on you we our they has "
        "were which from been will at by an or but its their"
    ),
    "de": _words(
        "der die das und ist nicht ein eine mit sich auf den dem des zu von wir sie es auch "
        "wurde sind für im bei nach werden oder aber ich"
    ),
    "fr": _words(
        "le la les et est des une un du dans que qui pour pas sur avec nous vous sont ce cette "
        "au aux été mais très il elle ne"
    ),
    "es": _words(
        "el la los las y es que de en un una por para con no del se al pero muy está son fue "
        "como su nuestro hemos ha lo"
    ),
    "it": _words(
        "il lo la gli le e è che di un una per con non del della sono nel alla ma molto anche "
        "come questo stato abbiamo ha"
    ),
}


def guess_language(text: str) -> str | None:
    """The ISO 639-1 code of the text's language, or None when the evidence is thin."""
    words = [match.group(0).lower() for match in _WORD.finditer(text)][:MAX_WORDS]
    if not words:
        return None
    hits = {code: sum(word in stop for word in words) for code, stop in STOP_WORDS.items()}
    ranked = sorted(hits.items(), key=lambda item: (-item[1], item[0]))
    (best, best_hits), (_, runner_up) = ranked[0], ranked[1]
    if best_hits < MIN_HITS or best_hits < MIN_SHARE * len(words):
        return None
    if best_hits < MIN_LEAD * runner_up:
        return None
    return best
