"""What a user writes without keybroker: a plain hvac script in apiKeyHelper.

VAULT_ADDR=… VAULT_TOKEN=… python3 hvac_get.py   →  prints secret/litellm#key
"""

import os

import hvac

client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
answer = client.secrets.kv.v2.read_secret_version(path="litellm", raise_on_deleted_version=True)
print(answer["data"]["data"]["key"])
