"""SigV4 for the read API: scripts/sigv4.py's signer, under the name the load tool uses."""

from __future__ import annotations

from scripts.sigv4 import Signer as ReadSigner

__all__ = ["ReadSigner"]
