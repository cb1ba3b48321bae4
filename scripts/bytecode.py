"""Compile chalicelib/ for the deployment package, so that Lambda does not compile it at every
cold start.

Lambda unpacks the package into /var/task, which is read-only: Python cannot write the .pyc it
compiles there, so without one in the package every new execution environment compiles each
module again (chalice/app.py and chalicelib/ together about 45 ms here, against about 300 ms for
the rest of `import app`: docs/benchmarks.md, P1). Chalice's packager ships chalicelib/ as it
finds it, __pycache__ included, but a .pyc that checks its source's timestamp never matches:
Chalice dates every zip entry 1980-01-01. A checked-hash .pyc (PEP 552) holds a hash of
its source instead: valid wherever the source is the same, whatever its timestamp, and compiled
again (locally, or ignored on Lambda) once the source changes. The tag in its name
(cpython-311) keeps any other Python from reading it.

Chalice's packager copies chalice/app.py and chalice/__init__.py into the package as sources
only. For `make package` (path 2) the same .pyc of those two are added to the zip it built
(--package); `chalice deploy` (path 1) builds and uploads its zip in one step, so there Lambda
still compiles chalice/app.py (about 20 ms here).

    python -m scripts.bytecode [chalicelib]
    python -m scripts.bytecode --package build/package/deployment.zip
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import marshal
import py_compile
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "chalicelib"
CHALICE_SOURCES = ("chalice/__init__.py", "chalice/app.py")
CHECKED_HASH_FLAGS = 0b11  # hash-based, and checked against the source at import


def compile_for_lambda(directory: Path = LIBRARY) -> bool:
    """Write a checked-hash .pyc for every module of `directory`; False if one failed."""
    return bool(compileall.compile_dir(
        str(directory), quiet=1, force=True,
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH))


def checked_hash_pyc(source: bytes, path: str) -> bytes:
    """A checked-hash .pyc (PEP 552): magic number, flags 0b11, the source's hash, the code."""
    code = compile(source, path, "exec", dont_inherit=True)
    return b"".join([importlib.util.MAGIC_NUMBER, CHECKED_HASH_FLAGS.to_bytes(4, "little"),
                     importlib.util.source_hash(source), marshal.dumps(code)])


def pyc_name(source: str) -> str:
    directory, _, name = source.rpartition("/")
    return f"{directory}/__pycache__/{name.removesuffix('.py')}.{sys.implementation.cache_tag}.pyc"


def add_to_package(package: Path, sources: tuple[str, ...] = CHALICE_SOURCES) -> list[str]:
    """Add a checked-hash .pyc of each of `sources` in the zip to it; the names added."""
    added = []
    with zipfile.ZipFile(package, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        names = set(archive.namelist())
        for source in sources:
            target = pyc_name(source)
            if source not in names or target in names:
                continue
            info = zipfile.ZipInfo(target, date_time=archive.getinfo(source).date_time)
            # Lambda's runtime user is not the files' owner: they must be readable by all.
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, checked_hash_pyc(archive.read(source), source))
            added.append(target)
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bytecode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", type=Path, default=LIBRARY)
    parser.add_argument("--package", type=Path,
                        help="instead: add chalice/'s .pyc to this deployment zip")
    args = parser.parse_args(argv)
    if args.package is not None:
        added = add_to_package(args.package)
        print(f"{args.package}: added {', '.join(added) or 'nothing (already there)'}")
        return 0
    return 0 if compile_for_lambda(args.directory) else 1


if __name__ == "__main__":
    sys.exit(main())
