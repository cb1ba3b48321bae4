"""Generate the CommandModel schema in infra/extension.yaml from chalicelib/command.schema.json.

Only the lines between the BEGIN/END GENERATED markers change; the rest of the YAML stays
byte-identical. `--check` exits 1 when the file is out of date (a test runs the same check).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "extension.yaml"
SCHEMA = ROOT / "chalicelib" / "command.schema.json"

_BLOCK = re.compile(
    r"(?P<begin>^(?P<indent>[ ]*)# BEGIN GENERATED Schema[^\n]*\n)"
    r".*?"
    r"(?P<end>^[ ]*# END GENERATED Schema[^\n]*$)",
    re.MULTILINE | re.DOTALL,
)


def render(template_text: str, schema: object) -> str:
    """The template text with its generated block rebuilt from `schema`."""
    match = _BLOCK.search(template_text)
    if match is None:
        raise ValueError("no '# BEGIN GENERATED Schema' ... '# END GENERATED Schema' block")
    indent = match.group("indent")
    # JSON is YAML: a flow mapping indented under the key loads back to the same object.
    body = json.dumps(schema, indent=2, ensure_ascii=False).splitlines()
    lines = [f"{indent}Schema: {body[0]}"] + [f"{indent}  {line}" for line in body[1:]]
    block = match.group("begin") + "\n".join(lines) + "\n"
    return template_text[: match.start()] + block + template_text[match.start("end"):]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the template is stale")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--schema", type=Path, default=SCHEMA)
    args = parser.parse_args(argv)
    current = args.template.read_text(encoding="utf-8")
    wanted = render(current, json.loads(args.schema.read_text(encoding="utf-8")))
    if current == wanted:
        return 0
    if args.check:
        print(f"{args.template} is stale: run python -m scripts.sync_schema", file=sys.stderr)
        return 1
    args.template.write_text(wanted, encoding="utf-8")
    print(f"updated the CommandModel schema in {args.template}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
