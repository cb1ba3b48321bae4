"""Local-only tooling: the AWS emulator, the gateway, the SQS poller and the pipeline.

Nothing here ships to Lambda. This package imports chalicelib/, never the reverse.
"""
