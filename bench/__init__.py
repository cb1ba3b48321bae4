"""Benchmarks: scripts that print their numbers (`python -m bench.<name>`); see docs/benchmarks.md.

Every benchmark talks only to 127.0.0.1 and bounds its loops in count and in time.
"""
