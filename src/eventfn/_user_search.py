"""Full-text search over the users the user-indexer keeps (migration 0004's search objects).

PostgreSQL matches `websearch_to_tsquery('simple', text)` against the generated `users.search`
column and ranks with `ts_rank` (name weighs more than e-mail, e-mail more than tags; divided
by 1 + log(length), so that a short record ranks above a long one, as bm25 does). SQLite
matches the FTS5 table `users_fts` and ranks with `bm25` using the same column order of
importance. The text a user types is never spliced into SQL or into FTS5 syntax unquoted:
`fts5_query` turns it into quoted FTS5 strings, with the web-search conventions PostgreSQL
applies (`"a phrase"`, `or`, `-excluded`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from sqlalchemy import Connection

DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 1000
_TERM = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w")

_PG_SEARCH: Final = (
    "SELECT user_id, name, email, tags, version, ts_rank(search, query, 1) AS rank"
    " FROM users, websearch_to_tsquery('simple', :text) AS query"
    " WHERE search @@ query ORDER BY rank DESC, user_id LIMIT :limit"
)
# bm25 weights per FTS5 column: user_id (not indexed), name, email, tags. Lower is better.
_SQLITE_SEARCH: Final = (
    "SELECT u.user_id, u.name, u.email, u.tags, u.version,"
    " -bm25(users_fts, 0.0, 10.0, 4.0, 2.0) AS rank"
    " FROM users_fts JOIN users AS u ON u.user_id = users_fts.user_id"
    " WHERE users_fts MATCH :query ORDER BY rank DESC, u.user_id LIMIT :limit"
)


@dataclass(frozen=True)
class UserMatch:
    """One user found by a search; `rank`: higher is a better match (not comparable across
    databases)."""

    user_id: str
    name: str
    email: str
    tags: tuple[str, ...]
    version: int
    rank: float

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "user_id": self.user_id,
            "name": self.name,
            "email": self.email,
            "tags": list(self.tags),
            "version": self.version,
            "rank": round(self.rank, 6),
        }


def fts5_string(term: str) -> str:
    """`term` as an FTS5 string literal: in double quotes, inner double quotes doubled."""
    return '"' + term.replace('"', '""') + '"'


def fts5_query(user_text: str) -> str | None:
    """An FTS5 MATCH expression for web-search style input; None when nothing can match.

    Words and `"quoted phrases"` must all occur; `or` between two of them makes either enough;
    a leading `-` excludes a word or phrase. Terms without a letter or digit are dropped (the
    tokenizer would make empty phrases of them).
    """
    groups: list[list[str]] = [[]]
    excluded: list[str] = []
    for match in _TERM.finditer(user_text):
        negated, phrase, word = match.group(1), match.group(2), match.group(3)
        if word is not None and word.lower() == "or":
            if groups[-1]:
                groups.append([])
            continue
        if word is not None and word.startswith("-") and len(word) > 1:
            negated, word = "-", word[1:]
        term = phrase if phrase is not None else word
        if term is None or not _WORD.search(term):
            continue
        (excluded if negated else groups[-1]).append(fts5_string(term))
    alternatives = [" AND ".join(group) for group in groups if group]
    if not alternatives:
        return None
    query = " OR ".join(f"({alternative})" for alternative in alternatives)
    if excluded:
        query = f"({query}) NOT ({' OR '.join(excluded)})"
    return query


def search_users(
    connection: Connection, user_text: str, limit: int = DEFAULT_LIMIT
) -> list[UserMatch]:
    """The users matching `user_text`, best first (at most `limit`, capped at MAX_LIMIT)."""
    from sqlalchemy import text

    limit = max(1, min(int(limit), MAX_LIMIT))
    if connection.dialect.name == "postgresql":
        if not _WORD.search(user_text):
            return []
        rows = connection.execute(text(_PG_SEARCH), {"text": user_text, "limit": limit})
    else:
        query = fts5_query(user_text)
        if query is None:
            return []
        rows = connection.execute(text(_SQLITE_SEARCH), {"query": query, "limit": limit})
    return [_match(row._mapping) for row in rows]


def _match(row: Any) -> UserMatch:
    tags = json.loads(row["tags"]) if row["tags"] else []
    return UserMatch(
        user_id=str(row["user_id"]),
        name=str(row["name"]),
        email=str(row["email"]),
        tags=tuple(str(tag) for tag in tags),
        version=int(row["version"]),
        rank=float(row["rank"]),
    )
