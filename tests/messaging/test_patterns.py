"""Event-type patterns mean what they mean to an AMQP topic binding."""

import pytest

from portal.messaging.patterns import pattern_problem, type_matches, types_match


@pytest.mark.parametrize(
    ("pattern", "event_type", "matches"),
    [
        ("#", "employee.registered", True),
        ("#", "x", True),
        ("employee.*", "employee.registered", True),
        ("employee.*", "employee", False),
        ("employee.*", "employee.a.b", False),
        ("employee.#", "employee", True),
        ("employee.#", "employee.a.b", True),
        ("#.registered", "employee.registered", True),
        ("*.registered", "registered", False),
        ("a.#.b", "a.b", True),
        ("a.#.b", "a.x.y.b", True),
        ("a.#.b", "a.xb", False),
        ("thanks.sent", "thanks.sent", True),
        ("thanks.sent", "thanks.sent.v2", False),
        ("team.*", "employee.registered", False),
    ],
)
def test_a_pattern_matches_like_a_topic_binding(pattern, event_type, matches):
    assert type_matches(pattern, event_type) is matches


def test_any_of_several_patterns():
    assert types_match(["team.*", "employee.*"], "employee.registered")
    assert not types_match(["team.*"], "employee.registered")
    assert not types_match([], "employee.registered")


@pytest.mark.parametrize("pattern", ["employee.**", "a..b", "", "a.b c", "emp*"])
def test_an_invalid_pattern_says_why(pattern):
    assert "pattern" in pattern_problem(pattern)


@pytest.mark.parametrize("pattern", ["#", "employee.*", "a.#.b", "thanks.sent"])
def test_valid_patterns_have_no_problem(pattern):
    assert pattern_problem(pattern) is None
