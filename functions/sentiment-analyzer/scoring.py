"""Document sentiment from VADER sentence scores.

Every sentence is scored with VADER's `polarity_scores`; the document's compound, positive,
neutral and negative values are the means over its sentences weighted by sentence length in
characters (a long sentence says more about a document than "Thanks."). The label uses VADER's
standard thresholds on the compound: positive >= 0.05, negative <= -0.05, else neutral.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .sentences import split_sentences

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05
EXCERPT_CHARS = 200
DECIMALS = 4


class _LazyAnalyzer:
    """Builds the analyzer on first use, once, whichever thread asks first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: SentimentIntensityAnalyzer | None = None

    def get(self) -> SentimentIntensityAnalyzer:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                    self._value = SentimentIntensityAnalyzer()
                value = self._value
        return value


_ANALYZER = _LazyAnalyzer()


def analyzer() -> SentimentIntensityAnalyzer:
    """The process's one VADER analyzer (its lexicon is loaded on first use, once).

    `polarity_scores` only reads the analyzer's dictionaries, so threads share it safely.
    """
    return _ANALYZER.get()


@dataclass(frozen=True)
class DocumentScore:
    """The aggregate sentiment of one text."""

    compound: float
    positive: float
    neutral: float
    negative: float
    label: str
    sentences: int
    most_negative_sentence: str | None
    most_negative_compound: float | None


def label_for(compound: float) -> str:
    """positive, negative or neutral by VADER's thresholds."""
    if compound >= POSITIVE_THRESHOLD:
        return "positive"
    if compound <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def excerpt(sentence: str, limit: int = EXCERPT_CHARS) -> str:
    """`sentence` cut to at most `limit` characters, an ellipsis marking a cut."""
    if len(sentence) <= limit:
        return sentence
    return sentence[: limit - 1].rstrip() + "\u2026"


def score_text(text: str) -> DocumentScore:
    """Score every sentence of `text` and aggregate; a text without sentences is neutral."""
    vader = analyzer()
    weight = 0
    sums = {"compound": 0.0, "pos": 0.0, "neu": 0.0, "neg": 0.0}
    count = 0
    worst: tuple[float, str] | None = None
    for sentence in split_sentences(text):
        scores = vader.polarity_scores(sentence)
        count += 1
        weight += len(sentence)
        for name in sums:
            sums[name] += scores[name] * len(sentence)
        if scores["compound"] < 0 and (worst is None or scores["compound"] < worst[0]):
            worst = (scores["compound"], sentence)
    means = {
        name: round(total / weight, DECIMALS) if weight else 0.0 for name, total in sums.items()
    }
    if not weight:
        means["neu"] = 1.0
    return DocumentScore(
        compound=means["compound"],
        positive=means["pos"],
        neutral=means["neu"],
        negative=means["neg"],
        label=label_for(means["compound"]),
        sentences=count,
        most_negative_sentence=None if worst is None else excerpt(worst[1]),
        most_negative_compound=None if worst is None else round(worst[0], DECIMALS),
    )
