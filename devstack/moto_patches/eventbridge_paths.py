"""moto's EventBridge, parsing each target's JSON path once instead of per event."""

from __future__ import annotations

import functools

import jsonpath_ng.ext as jsonpath_ext

# moto renders every event for every target through jsonpath_ng, parsing
# the same eight paths anew each time (a yacc parser built per path: about 9 ms an event, most of
# the change path's cost at 100 writes/s). The parsed paths do not change: parse each once.
jsonpath_ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ext.parse)
