"""Themes of a clause's comments: TF-IDF and k-means (scikit-learn). Pure: no Flask, no database.

Deterministic (fixed seed) and offline: the vectoriser learns its vocabulary from the comments
themselves; nothing is downloaded. A campaign group counts once (one text per group), so a
campaign of 200 copies does not become every theme.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

#: At most this many themes per clause: a digest of 30 themes is no digest.
MAX_THEMES = 8
#: Representative quotes kept per theme.
QUOTES = 3


@dataclass(frozen=True)
class Text:
    key: int  # a comment id (or a group's first comment id)
    text: str


@dataclass(frozen=True)
class FoundTheme:
    name: str
    key_terms: list[str]
    keys: list[int]  # the texts of this theme
    quotes: list[int]  # the texts nearest its centre, most typical first


def theme_count(n: int) -> int:
    """sqrt(n / 2) themes, at least 1, at most MAX_THEMES: 2 texts -> 1, 50 -> 5, 200 -> 8."""
    return max(1, min(MAX_THEMES, round(math.sqrt(n / 2)), n))


def find_themes(texts: Sequence[Text], language: str = "en") -> list[FoundTheme]:
    """Cluster the texts into themes, each named by its three strongest terms; largest first."""
    # numpy and scikit-learn cost a server process some 100 MB: loaded when themes are found,
    # not by every process that serves pages and co-editing.
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from threadpoolctl import threadpool_limits

    if not texts:
        return []
    vectoriser = TfidfVectorizer(stop_words="english" if language == "en" else None, sublinear_tf=True,
                                 ngram_range=(1, 1), min_df=1, max_df=0.9 if len(texts) > 10 else 1.0,
                                 max_features=3000)
    try:
        matrix = vectoriser.fit_transform([t.text for t in texts])
    except ValueError:  # only stop words or no words at all
        return [FoundTheme("Other", [], [t.key for t in texts], [t.key for t in texts[:QUOTES]])]
    k = theme_count(len(texts))
    if k == 1:
        labels = np.zeros(len(texts), dtype=int)
        centres = np.asarray(matrix.mean(axis=0))
    else:
        # One thread: a clause's matrix is small, and on a busy 2-core server OpenMP threads
        # fighting for cores made k-means 7 times slower (bench/feedback_rounds_bench.py).
        with warnings.catch_warnings(), threadpool_limits(1):
            # Fewer distinct texts than themes asked: k-means says so and still answers.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = KMeans(n_clusters=k, n_init=2, random_state=0).fit(matrix)
        labels, centres = model.labels_, model.cluster_centers_
    terms = vectoriser.get_feature_names_out()
    themes = []
    for label in range(centres.shape[0]):
        members = np.flatnonzero(labels == label)
        if members.size == 0:
            continue
        centre = centres[label]
        top = [str(terms[i]) for i in np.argsort(centre)[::-1][:3] if centre[i] > 0]
        closeness = matrix[members] @ centre
        typical = members[np.argsort(-np.asarray(closeness).ravel())][:QUOTES]
        themes.append(FoundTheme(", ".join(top) or "Other", top, [texts[i].key for i in members],
                                 [texts[i].key for i in typical]))
    themes.sort(key=lambda t: (-len(t.keys), t.name))
    return themes
