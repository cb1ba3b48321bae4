"""Run checkov with no network: its documented switches, and a guard that proves it.

    .venv-checkov/bin/python -m scripts.offline_checkov -f infra/extension.yaml \
        --framework cloudformation --output json

Runs in checkov's own virtualenv (.venv-checkov, see requirements-checkov.txt), so this module
uses the standard library only. checkov (3.3.x, checkov/common/util/env_vars_config.py and
main.py) calls out in two places unless told not to: the PyPI version check at import
(CKV_SKIP_PACKAGE_UPDATE_CHECK) and the Prisma Cloud download of guidelines and mappings
(--skip-download, BC_SKIP_MAPPING). Both are switched off here; on top of that an audit hook
refuses every socket connection and name lookup that is not loopback, and the run fails (exit 3)
if checkov attempted one, so "offline" is checked on every run rather than assumed.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import warnings
from typing import Any

OFFLINE_ENVIRONMENT = {
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
    "BC_SKIP_MAPPING": "TRUE",
    "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
}
NETWORK_REFUSED = 3
attempts: list[str] = []


def is_loopback(host: Any) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): the local host
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) else None  # AF_UNIX paths are local
    elif event == "socket.getaddrinfo":
        host = args[0]
    else:
        return
    if not is_loopback(host):
        attempts.append(f"{event} {host!r}")
        raise OSError(f"offline_checkov: network access to {host!r} refused")


def guard() -> None:
    """Refuse, and record, every non-loopback connection or lookup from now on."""
    sys.addaudithook(_audit)


def main(argv: list[str] | None = None) -> int:
    os.environ.update(OFFLINE_ENVIRONMENT)
    guard()
    args = list(sys.argv[1:] if argv is None else argv)
    if "--skip-download" not in args:
        args.append("--skip-download")
    from checkov.main import Checkov  # type: ignore[import-not-found,unused-ignore]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=SyntaxWarning)
        code = Checkov(args).run() or 0
    if attempts:
        print(f"offline_checkov: checkov tried the network: {attempts}", file=sys.stderr)
        return NETWORK_REFUSED
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
