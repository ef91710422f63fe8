"""Who may call the frontend, and on which sessions: the access file and the tokens it names.

The file given by ``--auth-file`` (``BRIDGE_AUTH_FILE``) is TOML, read with the standard library::

    [[token]]
    name = "ci"                    # logged and shown in refusals; the secret never is
    secret_sha256 = "9f86d0..."    # hex SHA-256 of the token (or secret = "..." in plain text)
    sessions = ["tenant-a-*", "shared"]
    access = "read"                # "read" or "read-write"

    [[token]]
    name = "operator"
    secret_sha256 = "..."
    admin = true                   # every session, every call, the whole ListSessions

A session pattern is a glob over the whole id: ``*`` is any run of characters, ``?`` one character,
everything else stands for itself. A token without ``admin`` reaches only the sessions its patterns
match; ``access`` defaults to ``"read"`` and ``sessions`` to none (fail closed). Tokens given with
``--auth-tokens`` are admin tokens. A file that does not parse, names an unknown key, repeats a name
or a secret, or holds no token is refused as a whole (:class:`AccessFileError`).

Every presented token is hashed and compared with every known digest in constant time, so neither
the time taken nor a log line tells which token nearly matched.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Access", "AccessFileError", "Keyring", "Principal", "glob_matches", "load_access_file"]

_TOKEN_KEYS = frozenset({"name", "secret", "secret_sha256", "sessions", "access", "admin"})
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


class AccessFileError(ValueError):
    """The access file cannot be used; the message names the file and what is wrong."""


class Access(enum.Enum):
    READ = "read"
    READ_WRITE = "read-write"


def glob_matches(pattern: str, text: str) -> bool:
    """Whether the glob ``pattern`` matches the whole of ``text``: ``*`` is any run of characters,
    ``?`` one character, every other character only itself (no ``[...]`` classes, no escapes).

    The greedy two-pointer walk takes at most len(pattern) * len(text) steps, where a regular
    expression such as ``.*a.*a.*a.*b`` can backtrack for far longer.
    """
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] in ("?", text[t]) and pattern[p] != "*":
            p, t = p + 1, t + 1
        elif p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif star >= 0:  # let the last star take one more character
            resume += 1
            p, t = star + 1, resume
        else:
            return False
    return all(char == "*" for char in pattern[p:])


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: an admin, or a token scoped to some sessions with one access level."""

    name: str
    admin: bool = False
    access: Access = Access.READ
    patterns: tuple[str, ...] = ()
    #: The SHA-256 of the caller's token: what it is known by across a reload of the rules.
    digest: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def scoped(cls, name: str, access: Access, patterns: Sequence[str], digest: bytes = b"") -> Principal:
        return cls(name, False, access, tuple(patterns), digest)

    def reaches(self, session_id: str) -> bool:
        """Whether this caller may see ``session_id`` at all (read it, find it in ListSessions)."""
        return self.admin or any(glob_matches(pattern, session_id) for pattern in self.patterns)

    def may_write(self, session_id: str) -> bool:
        return self.admin or (self.access is Access.READ_WRITE and self.reaches(session_id))

    def describe_scope(self) -> str:
        if self.admin:
            return "admin"
        if not self.patterns:
            return "no session"
        return f"{self.access.value} on sessions matching " + ", ".join(repr(p) for p in self.patterns)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, slots=True)
class Keyring:
    """The tokens a frontend accepts, by the SHA-256 of each, and the caller each one stands for."""

    entries: tuple[Principal, ...] = ()

    @classmethod
    def of(cls, admin_tokens: Iterable[str] = (), scoped: Keyring | None = None) -> Keyring:
        admins = tuple(
            Principal(f"auth-tokens #{number}", admin=True, digest=_digest(token))
            for number, token in enumerate(admin_tokens, start=1)
        )
        return cls(admins + (scoped.entries if scoped else ()))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def identify(self, presented: str) -> Principal | None:
        """The caller whose token is ``presented``, or None."""
        return self.holder(_digest(presented))

    def holder(self, digest: bytes) -> Principal | None:
        """The caller whose token has this SHA-256 (compared with every entry, in constant time)."""
        found: Principal | None = None
        for principal in self.entries:
            if hmac.compare_digest(digest, principal.digest) and found is None:
                found = principal
        return found


def load_access_file(path: str) -> Keyring:
    """The tokens of the access file at ``path``; :class:`AccessFileError` naming the problem if unusable."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return _keyring(document)
    except OSError as exc:
        raise AccessFileError(f"access file {path}: cannot read it: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise AccessFileError(f"access file {path}: not UTF-8 text ({exc.reason})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AccessFileError(f"access file {path}: not valid TOML: {exc}") from exc
    except ValueError as exc:
        raise AccessFileError(f"access file {path}: {exc}") from exc


def _keyring(document: Mapping[str, Any]) -> Keyring:
    unknown = sorted(set(document) - {"token"})
    if unknown:
        raise ValueError(f"unknown top-level key {unknown[0]!r} (expected [[token]] tables)")
    tables = document.get("token", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ValueError("'token' must be an array of tables: [[token]]")
    if not tables:
        raise ValueError("holds no [[token]]")
    entries: list[Principal] = []
    names: set[str] = set()
    for number, table in enumerate(tables, start=1):
        try:
            principal = _entry(table)
        except ValueError as exc:
            label = table.get("name") if isinstance(table.get("name"), str) else None
            raise ValueError(f"token #{number}{f' ({label!r})' if label else ''}: {exc}") from None
        if principal.name in names:
            raise ValueError(f"token #{number}: the name {principal.name!r} is used twice")
        if any(hmac.compare_digest(principal.digest, seen.digest) for seen in entries):
            raise ValueError(f"token #{number} ({principal.name!r}): its secret is another token's too")
        names.add(principal.name)
        entries.append(principal)
    return Keyring(tuple(entries))


def _entry(table: Mapping[str, Any]) -> Principal:
    unknown = sorted(set(table) - _TOKEN_KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOKEN_KEYS))})")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("'name' must be a non-empty string")
    digest = _secret_digest(table)
    admin = table.get("admin", False)
    if not isinstance(admin, bool):
        raise ValueError("'admin' must be true or false")
    if admin:
        if "sessions" in table or "access" in table:
            raise ValueError("an admin token reaches every session: drop 'sessions' and 'access'")
        return Principal(name, admin=True, digest=digest)
    sessions = table.get("sessions", [])
    if not isinstance(sessions, list) or not all(isinstance(p, str) and p for p in sessions):
        raise ValueError("'sessions' must be a list of non-empty glob strings")
    access_name = table.get("access", Access.READ.value)
    try:
        access = Access(access_name)
    except ValueError:
        choices = " or ".join(repr(a.value) for a in Access)
        raise ValueError(f"'access' must be {choices}, got {access_name!r}") from None
    return Principal.scoped(name, access, sessions, digest)


def _secret_digest(table: Mapping[str, Any]) -> bytes:
    if ("secret" in table) == ("secret_sha256" in table):
        raise ValueError("give exactly one of 'secret' and 'secret_sha256'")
    if "secret" in table:
        secret = table["secret"]
        if not isinstance(secret, str) or not secret:
            raise ValueError("'secret' must be a non-empty string")
        return _digest(secret)
    hashed = table["secret_sha256"]
    if not isinstance(hashed, str) or not _SHA256_HEX.fullmatch(hashed):
        raise ValueError("'secret_sha256' must be 64 hex digits (sha256sum of the token)")
    return bytes.fromhex(hashed)
