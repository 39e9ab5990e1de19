"""Issue 17, config mistakes: each through the real executable (stdout, stderr, exit code)."""

from __future__ import annotations

import pytest

from tests.conftest import KbEnv
from tests.kb import assert_fails, run


@pytest.mark.parametrize(
    ("text", "argv", "needles"),
    [
        # [profile.p] instead of [profiles.p]: was ignored silently, then "unknown profile"
        (
            '[profile.p]\nsource = "env"\nvar = "X"\n',
            ["get", "p"],
            [":1: unknown top-level table or key 'profile'", "did you mean 'profiles'?"],
        ),
        (
            '[profiles.litellm]\nsource = "env"\nvarr = "X"\n',
            ["get", "litellm"],
            [":3: [profiles.litellm]: unknown key 'varr'", "did you mean 'var'?"],
        ),
        (
            '[profiles.litellm]\nsource = "vualt"\n',
            ["get", "litellm"],
            [
                ":2: [profiles.litellm] key 'source': unknown source 'vualt'",
                "did you mean 'vault'?",
            ],
        ),
        (
            '[profiles.litellm]\nsource = "env"\nvar = "X"\n',
            ["get", "litelm"],
            ["unknown profile 'litelm'; did you mean 'litellm'?"],
        ),
        (
            '[defaults]\nmargn = "1m"\n',
            ["get", "demo"],
            [":2: [defaults]: unknown key 'margn'", "did you mean 'margin'?"],
        ),
    ],
)
def test_config_mistakes_name_the_line_and_the_closest_name(
    kb_env: KbEnv, text: str, argv: list[str], needles: list[str]
) -> None:
    kb_env.write_config(text)
    result = run(["keybroker", *argv], kb_env)
    assert_fails(result, 2, *needles)
    if needles[0].startswith(":"):  # file:line, then the table
        assert f"{kb_env.config_path}{needles[0]}" in result.stderr, result


def test_missing_config_from_the_flag_says_so(kb_env: KbEnv) -> None:
    """Before: `--config missing.toml` said "(from KEYBROKER_CONFIG)"."""
    result = run(
        ["keybroker", "get", "demo", "--config", str(kb_env.base / "missing.toml")], kb_env
    )
    assert_fails(result, 2, "missing.toml (from --config) does not exist")
    env = dict(kb_env, KEYBROKER_CONFIG=str(kb_env.base / "missing.toml"))
    assert_fails(run(["keybroker", "get", "demo"], env), 2, "(from KEYBROKER_CONFIG)")


def test_doctor_never_tells_you_to_run_doctor(kb_env: KbEnv) -> None:
    """Before: a fix line inside doctor said "run 'keybroker doctor v'"."""
    kb_env.write_config(
        '[profiles.v]\nsource = "vault"\naddr = "http://127.0.0.1:9"\n'
        'path = "x"\nfield = "k"\nauth_method = "approle"\nrole_id = "r"\n'
    )
    result = run(["keybroker", "doctor", "v"], kb_env)
    assert result.code == 1, result
    assert "keybroker doctor" not in result.stdout, result.stdout
