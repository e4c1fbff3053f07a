"""The one scrubber: every configured secret value, replaced by ``***`` in any text we emit.

Secrets come from the environment only. A variable is secret when its name is

- ``QUANT_*_API_KEY``, ``QUANT_*_API_SECRET``, or any ``QUANT_*`` name ending in ``_SECRET``,
  ``_TOKEN``, ``_PASSWORD`` or ``_PASSPHRASE`` (provider keys, the Telegram bot token, ...);
- ``QUANT_ALERT_WEBHOOK_URL`` (the whole URL is the credential) and ``QUANT_TELEGRAM_CHAT_ID``;
- or any other ``QUANT_*_URL`` that carries a password (``https://user:pw@mirror``): its password,
  and the Basic ``Authorization`` credentials it is sent as.

Each value is also known in the forms it takes inside other text (percent-encoded, JSON- and
``repr``-escaped; a URL's path alone), and a value of 16 characters or more is also caught when
it was cut off (a prefix or suffix of at least :data:`PARTIAL_MIN` characters), so a message
truncated before scrubbing still leaks nothing. Values shorter than :data:`MIN_LENGTH` are not
treated as secrets (they would blank out ordinary words and numbers).

What passes through it: provider errors when they are created (``ProviderError``) and turned into
one line (``providers.resilience.one_line``), exception chains leaving a provider or an asset body
(:func:`scrub_exception`), the writers of ``ingestion_gaps``, ``provider_health`` and ``alerts``,
JSON metadata (:func:`scrub_data`), and every Python log record of the process: importing this
module installs a log-record factory (:func:`install_log_scrubbing`) that rewrites a record's
message and traceback before any handler (console, Dagster's event log, pytest) sees it.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import re
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote, quote_plus, unquote, urlsplit

P = ParamSpec("P")
R = TypeVar("R")
MASK = "***"
MIN_LENGTH = 6
PARTIAL_MIN = 12
SECRET_NAME = re.compile(r"^QUANT_\w*(_API_KEY|_API_SECRET|_SECRET|_TOKEN|_PASSWORD|_PASSPHRASE)$")
SECRET_NAMES = frozenset({"QUANT_ALERT_WEBHOOK_URL", "QUANT_TELEGRAM_CHAT_ID"})
URL_NAME = re.compile(r"^QUANT_\w*_URL$")

_cache_lock = threading.Lock()
_cache: tuple[tuple[tuple[str, str], ...], tuple[tuple[str, ...], tuple[str, ...]]] | None = None


def is_secret_name(name: str) -> bool:
    return name in SECRET_NAMES or bool(SECRET_NAME.match(name))


def _forms(value: str) -> tuple[set[str], set[str]]:
    """(every form of the value inside a URL, JSON or a ``repr``; the forms also caught cut off).

    A URL's path is as secret as the URL (a webhook's token is its path); a URL is caught cut
    off only by its path, so that other addresses on the same host stay readable.
    """
    value = value.strip()
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1], repr(value)[1:-1]}
    partial = set(forms)
    if "://" in value:
        parts = urlsplit(value)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        forms |= {path, path.lstrip("/")}
        partial = {path.lstrip("/")}
    keep = {f for f in forms if len(f) >= MIN_LENGTH}
    return keep, {f for f in partial if len(f) >= 16}


def _env_secrets(env: Mapping[str, str]) -> list[tuple[str, str]]:
    found = []
    for name, value in env.items():
        if not name.startswith("QUANT_") or not value or not value.strip():
            continue
        if is_secret_name(name):
            found.append((name, value))
        elif URL_NAME.match(name) and "@" in value:
            try:
                parts = urlsplit(value.strip())
                user, password = parts.username, parts.password
            except ValueError:
                user = password = None
            if password:  # and the Basic credentials it is sent as (an echoed Authorization header)
                basic = base64.b64encode(f"{unquote(user or '')}:{unquote(password)}".encode()).decode()
                found += [(name, password), (name, unquote(password)), (name, basic)]
    return sorted(found)


def _longest_first(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(values), key=lambda s: (-len(s), s)))


def _compile(values: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    full: set[str] = set()
    partial: set[str] = set()
    for value in values:
        f, p = _forms(value)
        full |= f
        partial |= p
    return _longest_first(full), _longest_first(partial)


def _env_forms(env: Mapping[str, str] | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    global _cache
    if env is not None:
        return _compile(v for _n, v in _env_secrets(env))
    for _attempt in range(3):
        try:  # another thread may be setting a variable while we read them
            items = tuple(_env_secrets(dict(os.environ)))
            break
        except RuntimeError:
            continue
    else:
        with _cache_lock:
            if _cache is not None:
                return _cache[1]
        raise RuntimeError("the environment kept changing while its secrets were read")
    with _cache_lock:
        if _cache is not None and _cache[0] == items:
            return _cache[1]
    compiled = _compile(v for _n, v in items)
    with _cache_lock:
        _cache = (items, compiled)
    return compiled


def secret_values(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every secret form to replace, longest first (a URL before its parts)."""
    return _env_forms(env)[0]


def _known(extra: Iterable[str | None]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    full, partial = _env_forms()
    extra = [v for v in extra if v]
    if not extra:
        return full, partial
    more_full, more_partial = _compile(extra)
    return _longest_first((*full, *more_full)), _longest_first((*partial, *more_partial))


def _mask_partials(text: str, secret: str) -> str:
    """A cut-off secret: a prefix (text ends inside it) or a suffix (text starts inside it)."""
    head, tail = secret[:PARTIAL_MIN], secret[-PARTIAL_MIN:]
    i = text.find(head)
    while i >= 0:
        n = PARTIAL_MIN
        while i + n < len(text) and n < len(secret) and text[i + n] == secret[n]:
            n += 1
        text = text[:i] + MASK + text[i + n:]
        i = text.find(head, i + len(MASK))
    j = text.find(tail)
    while j >= 0:
        start, n = j, PARTIAL_MIN  # text[start:j + PARTIAL_MIN] is the secret's last n characters
        while start > 0 and n < len(secret) and text[start - 1] == secret[-n - 1]:
            start, n = start - 1, n + 1
        text = text[:start] + MASK + text[j + PARTIAL_MIN:]
        j = text.find(tail, start + len(MASK))
    return text


def scrub(text: Any, extra: Iterable[str | None] = ()) -> Any:
    """``text`` with every secret (and any value in ``extra``) replaced by ``***``.

    Anything that is not a ``str`` is returned unchanged.
    """
    if not isinstance(text, str) or not text:
        return text
    full, partial = _known(extra)
    for secret in full:
        if secret in text:
            text = text.replace(secret, MASK)
    for secret in partial:
        text = _mask_partials(text, secret)
    return text


def contains_secret(text: str, extra: Iterable[str | None] = ()) -> bool:
    return isinstance(text, str) and scrub(text, extra) != text


def scrub_data(value: Any) -> Any:
    """Strings inside dicts, lists and plain tuples (JSON metadata) scrubbed, keys too; any other
    object is returned as it is."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {scrub(k): scrub_data(v) for k, v in value.items()}
    if type(value) is list:
        return [scrub_data(v) for v in value]
    if type(value) is tuple:  # not a NamedTuple: those are rebuilt by their owners
        return tuple(scrub_data(v) for v in value)
    return value


def exception_chain(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and every exception behind it (``__cause__`` and ``__context__``), each once."""
    seen: list[BaseException] = []
    todo = [exc] if exc is not None else []
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__]
    return seen


class ScrubbedError(RuntimeError):
    """Stands in for an exception whose text held a secret and could not be rewritten in place."""


def scrub_exception(exc: BaseException) -> BaseException:
    """Rewrite the message of ``exc`` and of every exception in its chain, in place.

    String ``args`` and the usual message attributes (``description``, ``message``, ``msg``) are
    scrubbed. Returns ``exc``, or, when its text still holds a secret (a custom ``__str__``), a
    :class:`ScrubbedError` carrying the scrubbed one-line text, to raise instead (``from None``).
    """
    if not secret_values():
        return exc
    for current in exception_chain(exc):
        try:
            current.args = tuple(scrub_data(a) for a in current.args)
            for attr in ("description", "message", "msg", "reason"):
                value = getattr(current, attr, None)
                if isinstance(value, str):
                    setattr(current, attr, scrub(value))
            metadata = getattr(current, "metadata", None)
            if isinstance(metadata, dict):
                current.metadata = scrub_data(metadata)  # type: ignore[attr-defined]
        except (AttributeError, TypeError):  # read-only attributes: checked below
            pass
    if any(contains_secret(_safe_str(e)) for e in exception_chain(exc)):
        return ScrubbedError(scrub(f"{type(exc).__name__}: {_safe_str(exc)}"))
    return exc


def scrubbing_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: an exception leaving ``fn`` leaves with its whole chain scrubbed."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            clean = scrub_exception(exc)
            if clean is exc:
                raise
            raise clean from None

    return wrapper


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ says nothing
        return ""


# ---------------------------------------------------------------- every log record


def _scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        if not secret_values():
            return record
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let logging report it as usual
            return record
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = scrub(text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
    except Exception:  # never let a record through unscrubbed, never break logging
        record.msg, record.args = "(log message withheld: it could not be checked for secrets)", None
        record.exc_info = record.exc_text = record.stack_info = None
    return record


class ScrubbingFilter(logging.Filter):
    """The same rewrite as a filter, for a handler or logger one wants to guard explicitly."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub_record(record)
        return True


_installed = False
_install_lock = threading.Lock()


def install_log_scrubbing() -> None:
    """Wrap the log-record factory (once per process): every record is scrubbed as it is made,
    before any logger filter or handler (console, files, Dagster's event log) reads it."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return _scrub_record(previous(*args, **kwargs))

        factory.quant_scrubbing = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)
        _installed = True


install_log_scrubbing()
