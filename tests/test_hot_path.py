"""The cache-hit path imports no click, boto3, hvac, keyring or requests (nor TOML/platformdirs).

Speed itself is measured in benchmarks/, not asserted here; this pins the imports that make it.
"""

from __future__ import annotations

import subprocess
import sys

from tests.kb import run

HEAVY = ("click", "boto3", "botocore", "hvac", "keyring", "requests", "tomllib", "platformdirs")

PROBE = f"""
import sys
from keybroker.cli.{{module}} import {{func}}
sys.argv = {{argv!r}}
code = {{func}}()
loaded = [m for m in {HEAVY!r} if m in sys.modules]
sys.stderr.write("LOADED=" + ",".join(loaded) + "\\n")
sys.exit(code)
"""


def probe(kb_env, module: str, func: str, argv: list[str]) -> list[str]:
    code = PROBE.format(module=module, func=func, argv=argv)
    proc = subprocess.run([sys.executable, "-c", code], env=kb_env, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    line = proc.stderr.decode().strip().splitlines()[-1]
    assert line.startswith("LOADED="), proc.stderr
    return [m for m in line[len("LOADED="):].split(",") if m]


def test_get_hit_imports_nothing_heavy(kb_env):
    kb_env.write_config('[profiles.x]\nsource = "env"\nvar = "X"\n')  # a config to index
    assert run(["keybroker", "get", "demo"], kb_env).code == 0  # miss: fills cache and index
    assert probe(kb_env, "entry", "main", ["keybroker", "get", "demo"]) == []


def test_keychain_hit_does_not_import_keyring(keychain_env):
    keychain_env.write_config('[profiles.kc]\nsource = "keychain"\nservice = "hot"\n')
    run(["keybroker", "keychain", "set", "hot"], keychain_env, stdin=b"sk-hot-1\n")
    assert run(["keybroker", "get", "kc"], keychain_env).code == 0
    assert probe(keychain_env, "entry", "main", ["keybroker", "get", "kc"]) == []
    loaded = probe(keychain_env, "standalone", "keychain_main",
                   ["keybroker-keychain", "--service", "hot"])
    assert loaded == []
