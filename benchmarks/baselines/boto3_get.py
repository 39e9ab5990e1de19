"""What a user writes without keybroker: a plain boto3 script in apiKeyHelper.

AWS_REGION=… [AWS_ENDPOINT_URL=…] python3 boto3_get.py   →  prints the secret string
"""

import boto3

print(boto3.client("secretsmanager").get_secret_value(SecretId="litellm")["SecretString"])
