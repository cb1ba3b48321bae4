"""What bench.versus's consumers cost per million requests on AWS: a model, not a bill.

List prices for us-east-1, x86, without free tiers, from the AWS pricing pages
(https://aws.amazon.com/api-gateway/pricing/, /sqs/pricing/, /lambda/pricing/,
/dynamodb/pricing/on-demand/). This machine has no internet: the prices are those the pages
showed as of 2025-06 (DynamoDB's on-demand prices since its 50% cut of 2024-11-01; the others
unchanged for years); check them before deciding by them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

API_GATEWAY_REST_PER_MILLION = 3.50  # first 333 million requests a month
SQS_STANDARD_PER_MILLION = 0.40  # per request; each 64 KB of a request's payload is one request
LAMBDA_PER_MILLION_INVOCATIONS = 0.20
LAMBDA_PER_GB_SECOND = 0.0000166667  # billed per 1 ms of duration
DYNAMODB_PER_MILLION_WRU = 0.625  # on-demand, standard table class
DYNAMODB_PER_MILLION_RRU = 0.125
# Lambda gives CPU in proportion to memory: one vCPU's worth at 1,769 MB (Lambda developer
# guide, "Configuring function memory").
FULL_VCPU_MB = 1769
BATCH = 10
MESSAGE_BYTES = 400  # a command with its message attributes: one 64 KB chunk per message


@dataclass(frozen=True)
class Measured:
    """Per message or per batch, from the in-order run on DynamoDB Local."""

    write_units_per_message: float
    read_units_per_message: float
    batch_wall_ms: float  # mean handler wall time per batch (+10 ms per DynamoDB call)
    batch_cpu_ms: float  # mean handler CPU time per batch


def lambda_ms(measured: Measured, memory_mb: int) -> float:
    """Duration per batch at `memory_mb`: the measured wall time, with its CPU part stretched by
    the share of a vCPU Lambda gives (this machine's core counted as one vCPU), billed per ms."""
    stretch = max(1.0, FULL_VCPU_MB / memory_mb)
    return math.ceil(measured.batch_wall_ms + measured.batch_cpu_ms * (stretch - 1))


def lines(measured: Measured, memory_mb: int) -> dict[str, float]:
    """US dollars per million requests, by line, with full batches of 10."""
    batches = 1e6 / BATCH
    chunks = math.ceil(BATCH * MESSAGE_BYTES / 65536)  # a receive of 10 messages
    sqs_requests = 1e6 * math.ceil(MESSAGE_BYTES / 65536) + batches * (chunks + 1)
    return {
        "API Gateway REST": API_GATEWAY_REST_PER_MILLION,
        "SQS (send, receive, delete)": sqs_requests / 1e6 * SQS_STANDARD_PER_MILLION,
        "Lambda invocations": batches / 1e6 * LAMBDA_PER_MILLION_INVOCATIONS,
        f"Lambda duration ({memory_mb} MB)": (batches * lambda_ms(measured, memory_mb) / 1000
                                              * memory_mb / 1024 * LAMBDA_PER_GB_SECOND),
        "DynamoDB on-demand": (measured.write_units_per_message * DYNAMODB_PER_MILLION_WRU
                               + measured.read_units_per_message * DYNAMODB_PER_MILLION_RRU),
    }


def per_million(measured: Measured, memory_mb: int) -> float:
    return sum(lines(measured, memory_mb).values())
