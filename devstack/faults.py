"""Fault injection at the HTTP level: a small proxy in front of the emulator.

Requests whose body contains a configured marker get a DynamoDB throttling error (HTTP 400
ProvisionedThroughputExceededException), an HTTP 500, or a transaction cancelled by a conflicting
one (TransactionCanceledException, reasons [TransactionConflict, None]), or DynamoDB's verdict
that the request is invalid (a ValidationException, or a cancellation reason ValidationError
for the transaction's first action), N times or always;
everything else is forwarded untouched, after `latency_ms` (0 unless set: a slower network, the
same for every request) and counted by operation (`calls`, from X-Amz-Target). Or, in the random
mode, each DynamoDB request fails with probability `rate` (a seeded RNG), with a kind drawn from
`kinds` (throttling and 500s by default; `500-after` forwards the request first, so the write
happens and its caller sees a 500 anyway, as when DynamoDB's answer is lost). EventBridge calls
(X-Amz-Target AWSEvents.*) get EventBridge's errors instead, and `entries` fails some entries of a
PutEvents call and forwards the others (devstack/eventbridge_faults.py). Point only the
consumer at it, e.g.
`AWS_ENDPOINT_URL_DYNAMODB=<proxy url>` (botocore honours service-specific endpoint variables),
so the code under test runs unchanged and sees the same errors AWS would send. `down = True`
makes an outage: every connection closed unanswered until it is set back.

    python -m devstack.faults --target http://127.0.0.1:5000 --marker BOOM --kind throttle --times 3
    python -m devstack.faults --target http://127.0.0.1:5002 --latency-ms 10
    python -m devstack.faults --target http://127.0.0.1:5002 --fault-rate 0.1 --seed 7
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
from collections import Counter
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

from devstack.fault_kinds import (
    CONFLICT,
    ENTRIES,
    INVALID,
    INVALID_ACTION,
    KINDS,
    SERVER_ERROR,
    SERVER_ERROR_AFTER,
    THROTTLE,
    TRANSIENT_KINDS,
    Fault,
    RandomFaults,
)
from devstack.fault_proxy_handler import handler_class
from devstack.lifecycle import StartStop

# Kinds and faults are imported from here by the tests and tools (devstack.fault_kinds has them).
__all__ = ["CONFLICT", "ENTRIES", "INVALID", "INVALID_ACTION", "KINDS", "SERVER_ERROR",
           "SERVER_ERROR_AFTER", "THROTTLE", "TRANSIENT_KINDS", "Fault", "FaultProxy",
           "RandomFaults"]


class FaultProxy(StartStop):
    """A threaded HTTP proxy on 127.0.0.1; a context manager; faults can change while it runs.
    Its server's handler (devstack/fault_proxy_handler.py) answers each request."""

    def __init__(self, target_url: str | None, host: str = "127.0.0.1", port: int = 0,
                 latency_ms: float = 0.0) -> None:
        """target_url None: set it later (forward_to), when the proxy must be running before
        its target is (a pipeline process learns its emulator's port as it starts); requests
        wait for it meanwhile. port 0: the kernel chooses when it starts (then `url`)."""
        self._target_known = threading.Event()
        self.target = urlsplit("")
        if target_url is not None:
            self.forward_to(target_url)
        self.latency_ms = latency_ms  # added before forwarding each request
        self.calls: Counter[str] = Counter()  # forwarded requests by operation (X-Amz-Target)
        self.host = host
        self.port = port
        self._faults: list[Fault] = []
        self.random: RandomFaults | None = None  # the random mode, after the marker faults
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.forwarded = 0
        self.client_gone = 0  # answers the client no longer waited for
        # An outage: while set, every request's connection is closed unanswered, as when
        # DynamoDB cannot be reached (botocore: a connection error).
        self.down = False
        self.refused = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def forward_to(self, target_url: str) -> None:
        self.target = urlsplit(target_url)
        self._target_known.set()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _count(self, target: str) -> None:
        with self._lock:
            self.forwarded += 1
            self.calls[target.rpartition(".")[2] or "(no X-Amz-Target)"] += 1

    def reset_counts(self) -> None:
        with self._lock:
            self.forwarded = 0
            self.calls.clear()

    def _pick(self, body: bytes, target: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(body, target):
                    fault.injected += 1
                    return fault
            if self.random is not None:
                kind = self.random.draw(target)
                if kind is not None:
                    return Fault("", kind, None, injected=self.random.injected[kind])
        return None

    def start(self) -> FaultProxy:
        self._server = ThreadingHTTPServer((self.host, self.port), handler_class(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]  # bound: the port it got
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="http://127.0.0.1:5000", help="emulator URL")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--marker", help="inject when the body contains this")
    parser.add_argument("--kind", choices=KINDS, default=THROTTLE)
    parser.add_argument("--times", type=int, default=None, help="how often (default: always)")
    parser.add_argument("--operation", help="only this DynamoDB operation, e.g. PutItem")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="add this much to every forwarded request")
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="random mode: fail each request with this probability (0 to 1)")
    parser.add_argument("--seed", type=int, default=0, help="random mode: the RNG's seed")
    parser.add_argument("--random-kinds", default=",".join(TRANSIENT_KINDS),
                        help="random mode: comma-separated kinds to draw from (default: "
                             "%(default)s)")
    args = parser.parse_args(argv)
    if args.marker is None and not args.fault_rate and not args.latency_ms:
        parser.error("give --marker (a fault), --fault-rate (random faults) or --latency-ms (a "
                     "slower network)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    proxy = FaultProxy(args.target, port=args.port, latency_ms=args.latency_ms)
    if args.marker is not None:
        proxy.add(Fault(args.marker, args.kind, args.times, args.operation))
    if args.fault_rate:
        try:
            proxy.random = RandomFaults(args.fault_rate, args.seed,
                                        tuple(args.random_kinds.split(",")), args.operation)
        except ValueError as error:
            parser.error(str(error))
    with proxy:
        print(f"fault proxy on {proxy.url} -> {args.target}; "
              f"export AWS_ENDPOINT_URL_DYNAMODB={proxy.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
        if proxy.random is not None:
            print(f"random faults: {proxy.random.total_injected} of {proxy.random.seen} "
                  f"requests ({proxy.random.injected})", flush=True)


if __name__ == "__main__":
    main()
