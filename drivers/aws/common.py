"""Options shared by aws-s3, aws-sqs and aws-dynamo: region, assumed role, shared-config loading."""

from __future__ import annotations

from core.options import Option

EXTRA = "aws"
REQUIRES = ("boto3",)

AWS_OPTIONS: list[Option] = [
    Option("aws-region", help="AWS region (empty: AWS_REGION, then us-east-1)"),
    Option("aws-role-arn", group="auth",
           help="assume this IAM role via STS on top of the default credentials (empty: no role)"),
    Option("aws-load-config", "bool", group="auth", advanced=True,
           help="read profiles from ~/.aws/config (sets AWS_SDK_LOAD_CONFIG=1)"),
]
