"""A load tool for any stack: `python -m bench.load --help` (docs/running-locally.md, "The load
tool").

POSTs commands at a rate (open loop) or a concurrency (closed loop), reads each outcome back
through GET /requests/{id}, and reports POST latency and POST->applied latency apart.
"""
