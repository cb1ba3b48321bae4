"""The load tool: `python -m bench.load --help`; bench/load/cli.py, docs/running-locally.md."""
