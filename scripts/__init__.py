"""Deployment helpers for sqs-manager: CloudFormation YAML loading, the standalone stack template,
stack outputs into .chalice/config.json, and the API Gateway model schema sync."""
