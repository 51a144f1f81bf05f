"""Event-type patterns, with the syntax of AMQP topic bindings.

A type is dot-separated words (``employee.registered``); in a pattern ``*``
stands for exactly one word and ``#`` for zero or more (``employee.*``,
``#``). The same patterns bind queues to ``portal.broadcast``, so what a
pattern means here is what it means to RabbitMQ.
"""

import functools
import re

_WORD = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid event-type pattern, or None."""
    words = pattern.split(".")
    for word in words:
        if word not in {"*", "#"} and not _WORD.fullmatch(word):
            return (
                f"invalid event-type pattern {pattern!r}: words are letters, "
                "digits, '_' or '-', or a lone '*' or '#'"
            )
    return None


@functools.lru_cache(maxsize=4096)
def type_matches(pattern: str, event_type: str) -> bool:
    """Does ``event_type`` match ``pattern`` (AMQP topic semantics)?"""
    return _words_match(tuple(pattern.split(".")), tuple(event_type.split(".")))


def _words_match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        # Zero words, or one word and "#" again.
        return _words_match(rest, words) or (
            bool(words) and _words_match(pattern, words[1:])
        )
    if not words:
        return False
    return (head == "*" or head == words[0]) and _words_match(rest, words[1:])


def types_match(patterns: list[str] | tuple[str, ...], event_type: str) -> bool:
    """Does ``event_type`` match any of ``patterns``?"""
    return any(type_matches(pattern, event_type) for pattern in patterns)
