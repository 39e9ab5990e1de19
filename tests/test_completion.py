"""Shell completion and "did you mean": helping a person type the command line.

The completion script for each shell, profile names completed from the config (also from
``--config``, and quietly nothing from a broken one), command names; an unknown command
suggests the close one.
"""

from __future__ import annotations

import pytest

from tests.conftest import KbEnv
from tests.kb import EXTRA_PROFILES, complete, run

# --- shell completion: the script, and profile names from the config ---


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_for_each_shell(kb_env: KbEnv, shell: str) -> None:
    result = run(["keybroker", "completion", shell], kb_env)
    assert result.code == 0, result
    assert "_KEYBROKER_COMPLETE" in result.stdout
    assert f"{shell}_complete" in result.stdout
    assert result.err == b""


def test_completion_refuses_an_unknown_shell(kb_env: KbEnv) -> None:
    result = run(["keybroker", "completion", "tcsh"], kb_env)
    assert result.code == 2, result
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.stderr


def test_profile_names_complete_from_the_config(kb_env: KbEnv) -> None:
    kb_env.write_config(EXTRA_PROFILES + '\n[profiles.other]\nsource = "env"\nvar = "X"\n')
    got = complete(kb_env, "keybroker get ")
    assert got.code == 0, got
    assert got.stdout.splitlines() == ["plain,a", "plain,demo", "plain,k", "plain,o", "plain,other"]
    assert complete(kb_env, "keybroker print-token o").stdout.splitlines() == [
        "plain,o",
        "plain,other",
    ]
    for words in (
        "keybroker doctor ot",
        "keybroker cache clear ot",
        "keybroker ci export ot",
        "keybroker exec ot",
        "keybroker login ot",
        "keybroker aws-credentials ot",
    ):
        assert complete(kb_env, words).stdout.splitlines() == ["plain,other"], words
    assert "other" in complete(kb_env, "keybroker get ", shell="zsh").stdout.split("\n")
    # fish's line format changed between click releases (8.4: type/value/help lines; 8.5:
    # "type,value"): compare with what this click's FishComplete writes for the item
    from click.shell_completion import CompletionItem, FishComplete  # noqa: PLC0415

    fish_item = FishComplete.format_completion(None, CompletionItem("other"))  # type: ignore[arg-type]
    assert complete(kb_env, "keybroker get ", shell="fish").stdout.endswith(fish_item + "\n")


def test_profile_completion_follows_config_flag_and_survives_a_broken_config(kb_env: KbEnv) -> None:
    other = kb_env.base / "other.toml"
    other.write_text('[profiles.elsewhere]\nsource = "env"\nvar = "X"\n')
    got = complete(kb_env, f"keybroker get --config {other} e")
    assert got.stdout.splitlines() == ["plain,elsewhere"], got
    kb_env.write_config("[profiles.broken\n")
    broken = complete(kb_env, "keybroker get ")
    assert broken.code == 0
    assert broken.out.strip() == b""  # no candidates, and no error text in the prompt
    assert broken.err == b""


def test_command_names_complete(kb_env: KbEnv) -> None:
    assert complete(kb_env, "keybroker pr").stdout.splitlines() == ["plain,print-token"]


# --- unknown commands: did you mean ---


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("prnt-token", "print-token"),
        ("cach", "cache"),
        ("doctr", "doctor"),
        ("complete", "completion"),
    ],
)
def test_unknown_command_suggests_the_close_one(kb_env: KbEnv, typed: str, meant: str) -> None:
    result = run(["keybroker", typed, "demo"], kb_env)
    assert result.code == 2, result
    assert result.out == b""
    assert f"Error: No such command '{typed}'. Did you mean '{meant}'?" in result.stderr


def test_unknown_command_without_a_close_one(kb_env: KbEnv) -> None:
    result = run(["keybroker", "xyzzy"], kb_env)
    assert result.code == 2, result
    assert "Error: No such command 'xyzzy'.\n" in result.stderr
