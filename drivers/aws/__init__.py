"""AWS drivers: aws-s3, aws-sqs and aws-dynamo (declarations in the submodules)."""
