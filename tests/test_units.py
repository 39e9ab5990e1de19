"""Small pure pieces: key validation, durations, redaction, default paths."""

from __future__ import annotations

import os
import sys

import platformdirs
import pytest

from keybroker import paths, redact
from keybroker.durations import format_duration, parse_duration
from keybroker.errors import InvalidSecret
from keybroker.validate import MAX_KEY_LENGTH, validate_key
from tests.kb import default_locations


@pytest.mark.parametrize(
    "value", ["sk-abc", "a" * MAX_KEY_LENGTH, "x!#$%&'()*+,-./:;<=>?@[]^_`{|}~"]
)
def test_valid_keys(value: str) -> None:
    assert validate_key(value, "t") == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "empty"),
        ("a" * (MAX_KEY_LENGTH + 1), "over the 16384 limit"),
        ("two words", "whitespace at position 4"),
        ("line\nbreak", "a line break"),
        ("cr\rlf", "a line break"),
        ("tab\tkey", "whitespace"),
        ("nul\x00key", "a control character"),
        ("esc\x1b[0m", "a control character"),
        ("del\x7f", "a control character"),
        ("unicodé", "a non-ASCII character"),
    ],
)
def test_invalid_keys_say_why_without_the_value(value: str, why: str) -> None:
    with pytest.raises(InvalidSecret) as info:
        validate_key(value, "profile 'p'")
    text = info.value.render()
    assert why in text
    assert info.value.exit_code == 6
    if len(value) > 3:
        assert value not in text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("5m", 300), ("1h", 3600), ("2d", 172800), (30, 30), ("1.5m", 90)],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5x", "", "-1", "abc", "inf", "nan", True])
def test_bad_durations(text: str | bool) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(59) == "59s"
    assert format_duration(3599) == "59m 59s"
    assert format_duration(-3) == "-3s"
    assert format_duration(90000) == "1d 1h"


def test_mask_never_shows_enough_to_use() -> None:
    assert redact.mask("sk-1234567890abcdef") == "sk-…cdef"
    assert redact.mask("short") == "…"
    assert "1234567890" not in redact.mask("sk-1234567890abcdef")


def test_scrub_replaces_registered_secrets() -> None:
    redact.sensitive("s3cr3t-value")
    assert redact.scrub("error: token s3cr3t-value refused") == "error: token *** refused"


@pytest.mark.skipif(sys.platform == "win32", reason="Windows defers to platformdirs itself")
def test_default_paths_match_platformdirs(monkeypatch: pytest.MonkeyPatch) -> None:
    default_locations(monkeypatch)
    assert_platformdirs_locations({})
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/xdg-cache")  # platformdirs reads os.environ
    monkeypatch.setenv("XDG_CONFIG_HOME", "/tmp/xdg-config")
    monkeypatch.setenv("XDG_DATA_HOME", "/tmp/xdg-data")
    assert_platformdirs_locations(dict(os.environ))


def assert_platformdirs_locations(env: dict[str, str]) -> None:
    """keybroker's cache, config and data dirs under ``env`` are platformdirs' own."""
    assert str(paths.cache_dir(env)) == platformdirs.user_cache_dir("keybroker", appauthor=False)
    assert str(paths.config_file(env).parent) == platformdirs.user_config_dir(
        "keybroker", appauthor=False
    )
    assert str(paths.data_dir(env)) == platformdirs.user_data_dir("keybroker", appauthor=False)


def test_overrides() -> None:
    env = {"KEYBROKER_CACHE_DIR": "/c", "KEYBROKER_CONFIG": "/x.toml", "KEYBROKER_DATA_DIR": "/d"}
    assert str(paths.cache_dir(env)) == "/c"
    assert str(paths.config_file(env)) == "/x.toml"
    assert str(paths.data_dir(env)) == "/d"
