"""Benchmarks: scripts that print their numbers (`python -m bench.<name>`); see BENCHMARKS.md.

Every benchmark talks only to 127.0.0.1 and bounds its loops in count and in time.
"""
