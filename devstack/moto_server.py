"""moto's server with devstack's patches (devstack/moto_patches/); run as a script.

    python devstack/moto_server.py -H 127.0.0.1 -p 5000   (moto's own options)
    python devstack/moto_server.py --fd N                 (serve on a listening socket)

devstack.emulator binds the socket and hands it over (--fd): the port is chosen and held before
this process starts, so no other program can take it in between (devstack/ports.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path: its modules (auth, infra, resources...)
# must not shadow anything moto imports. The patches are imported as the devstack package, from
# the repository's root, which comes last.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
sys.path.append(str(_HERE.parent))

import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402

from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.server import main  # noqa: E402

import devstack.moto_patches  # noqa: E402, F401  (applied on import)


def serve_on(fd: int) -> None:
    """moto.server.main's server, on a socket that is already listening."""
    from werkzeug.serving import make_server

    listening = socket.socket(fileno=fd)
    host, port = listening.getsockname()[:2]
    os.environ.setdefault("MOTO_PORT", str(port))  # what moto's generated URLs name
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]  # as moto.server.main
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler,
                         fd=fd)
    for signum in (signal.SIGINT, signal.SIGTERM):  # as moto.server.main
        signal.signal(signum, lambda signum, frame: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--fd":
        serve_on(int(sys.argv[2]))
    else:
        main()
