"""moto's request dispatcher, without a directory listing per request."""

from __future__ import annotations

from moto import backends

# moto's dispatcher lists its package folder (a listdir and about 200 isdir calls) to route each
# request, under a lock that every request takes: the list, read once, does not change.
_MODULES = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _MODULES
