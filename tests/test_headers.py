"""``keybroker headers``: the JSON object Claude Code's otelHeadersHelper and MCP headersHelper
read, byte for byte, including the per-MCP-server profile choice."""

from __future__ import annotations

import json

import pytest

from keybroker import output
from tests.conftest import KbEnv
from tests.kb import assert_fails, run

KEY = "sk-headers-9f8e7d6c5b"
MCP_KEY = "mcp-token-1a2b3c4d"


@pytest.fixture
def hdr_env(kb_env: KbEnv) -> KbEnv:
    kb_env["MAIN_KEY"] = KEY
    kb_env["MCP_KEY"] = MCP_KEY
    kb_env.write_config(
        '[profiles.main]\nsource = "env"\nvar = "MAIN_KEY"\n'
        '[profiles.mcp]\nsource = "env"\nvar = "MCP_KEY"\n'
        '[profiles.unset]\nsource = "env"\nvar = "NOT_SET_ANYWHERE"\n'
        "[mcp.servers]\n"
        'github = { profile = "mcp", url = "https://mcp.example/mcp" }\n'
        'internal = { profile = "mcp", header = "X-Api-Key", url = "https://mcp.example/mcp/" }\n'
        'tokened = { profile = "main", scheme = "Token", any_url = true }\n'
    )
    return kb_env


def test_default_is_bearer_authorization(hdr_env: KbEnv) -> None:
    result = run(["keybroker", "headers", "main"], hdr_env)
    assert result.code == 0, result
    assert result.out == b'{"Authorization": "Bearer ' + KEY.encode() + b'"}\n'
    assert result.err == b""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--header", "X-Api-Key"], {"X-Api-Key": KEY}),
        (["--scheme", "Token"], {"Authorization": f"Token {KEY}"}),
        (["--scheme", ""], {"Authorization": KEY}),
        (
            ["--header", "Authorization", "--header", "X-Api-Key"],
            {"Authorization": f"Bearer {KEY}", "X-Api-Key": KEY},
        ),
        (["--header", "X-Api-Key", "--scheme", "Bearer"], {"X-Api-Key": f"Bearer {KEY}"}),
    ],
)
def test_header_and_scheme_options(
    hdr_env: KbEnv, args: list[str], expected: dict[str, str]
) -> None:
    result = run(["keybroker", "headers", "main", *args], hdr_env)
    assert result.code == 0, result
    assert json.loads(result.out) == expected
    assert result.out.endswith(b"}\n")


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("github", {"Authorization": f"Bearer {MCP_KEY}"}),
        ("internal", {"X-Api-Key": MCP_KEY}),
        ("tokened", {"Authorization": f"Token {KEY}"}),
    ],
)
def test_mcp_server_picks_its_profile(
    hdr_env: KbEnv, server: str, expected: dict[str, str]
) -> None:
    env = dict(
        hdr_env,
        CLAUDE_CODE_MCP_SERVER_NAME=server,
        CLAUDE_CODE_MCP_SERVER_URL="https://mcp.example/mcp",
    )
    result = run(["keybroker", "headers"], env)
    assert result.code == 0, result
    assert json.loads(result.out) == expected
    # the server's entry wins over a PROFILE argument, so one helper serves every server
    assert json.loads(run(["keybroker", "headers", "main"], env).out) == expected


def test_unmapped_server_falls_back_to_profile(hdr_env: KbEnv) -> None:
    env = dict(hdr_env, CLAUDE_CODE_MCP_SERVER_NAME="unknown-server")
    result = run(["keybroker", "headers", "main"], env)
    assert json.loads(result.out) == {"Authorization": f"Bearer {KEY}"}
    result = run(["keybroker", "headers"], env)
    assert_fails(result, 2, "unknown-server", "[mcp.servers]")


def test_no_profile_at_all(hdr_env: KbEnv) -> None:
    assert_fails(run(["keybroker", "headers"], hdr_env), 2, "PROFILE is required")


@pytest.mark.parametrize(
    "args", [["--header", "Bad Header"], ["--header", "X:Y"], ["--scheme", "Bad Scheme"]]
)
def test_invalid_header_or_scheme(hdr_env: KbEnv, args: list[str]) -> None:
    assert_fails(run(["keybroker", "headers", "main", *args], hdr_env), 2, "invalid", secrets=[KEY])


def test_source_failure_prints_nothing_on_stdout(hdr_env: KbEnv) -> None:
    result = run(["keybroker", "headers", "unset"], hdr_env)
    assert_fails(result, 5, "NOT_SET_ANYWHERE")


def test_bad_mcp_table_names_the_key(hdr_env: KbEnv) -> None:
    hdr_env.write_config(
        '[profiles.main]\nsource = "env"\nvar = "MAIN_KEY"\n'
        '[mcp.servers]\nsrv = { profile = "main", colour = "red" }\n'
    )
    env = dict(hdr_env, CLAUDE_CODE_MCP_SERVER_NAME="srv")
    assert_fails(run(["keybroker", "headers"], env), 2, "[mcp.servers] srv", "colour")


def test_headers_format_unit() -> None:
    assert (
        output.headers(["Proxy-Authorization"], "k", None)
        == '{"Proxy-Authorization": "Bearer k"}\n'
    )
