"""AWS helpers shared by actions and checks: clients per target, DynamoDB, CloudWatch, Lambda
invocations, retries, the IAM policy."""
