"""The rules for an event type's JSON Schema, and validating `data` against one without I/O.

A schema may refer only to itself: every `$ref` resolves inside the document, and `$schema`
names one of the standard drafts. Compiling never retrieves anything (for schemas stored
before this rule, too), and patterns run on a linear-time engine with a backtracking cap
for the constructs that need backtracking.
"""

from typing import Any

import jsonschema_rs

# The standard drafts' meta-schema URIs; jsonschema-rs bundles each, so none is fetched.
KNOWN_METASCHEMAS = frozenset(
    uri + suffix
    for uri in (
        "http://json-schema.org/draft-04/schema",
        "http://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-07/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2020-12/schema",
    )
    for suffix in ("", "#")
)
REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# Plain patterns run on the `regex` crate (linear time); lookaround and backreferences fall
# back to backtracking, which gives up (an error, so the data is refused) after this many steps.
BACKTRACK_LIMIT = 100_000
MAX_SHOWN = 200  # characters of a ref quoted in an error


class UnusableSchema(ValueError):
    """The schema breaks a rule or cannot be compiled; the message says which part and why."""


def _refuse_retrieval(uri: str) -> Any:
    raise UnusableSchema(f"{uri[:MAX_SHOWN]} is outside the schema")


def _walk(node: Any) -> Any:
    """Every object in the document, data under `const`/`enum`/`default` included: a ref
    anywhere is judged, so nothing the validator might follow is missed."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def rule_breaks(schema: dict) -> list[str]:
    """Refs that leave the document and unknown `$schema`s, as messages; [] if none."""
    problems = []
    for obj in _walk(schema):
        for keyword in REF_KEYWORDS:
            ref = obj.get(keyword)
            if isinstance(ref, str) and not ref.startswith("#"):
                problems.append(f"{keyword} {ref[:MAX_SHOWN]!r} is not local: a schema may only refer to itself (#…)")
        meta = obj.get("$schema")
        if isinstance(meta, str) and meta not in KNOWN_METASCHEMAS:
            problems.append(f"$schema {meta[:MAX_SHOWN]!r} is not a standard draft")
    return problems


def compile_schema(schema: dict) -> jsonschema_rs.Validator:
    """A validator that never retrieves anything; UnusableSchema if the schema cannot be used."""
    try:
        return jsonschema_rs.validator_for(
            schema,
            retriever=_refuse_retrieval,
            pattern_options=jsonschema_rs.FancyRegexOptions(backtrack_limit=BACKTRACK_LIMIT),
            # `format` stays an annotation, as before (and no format checker can be made slow).
            validate_formats=False,
        )
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        raise UnusableSchema(str(exc).split("\n", 1)[0]) from exc


def check_schema(schema: dict) -> None:
    """UnusableSchema unless the schema keeps to the rules, is valid for its draft and compiles."""
    problems = rule_breaks(schema)
    if problems:
        raise UnusableSchema("; ".join(problems[:5]))
    try:  # only after the $schema check: an unknown meta-schema would be fetched
        jsonschema_rs.meta.validate(schema)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as exc:
        raise UnusableSchema(f"not a valid JSON Schema: {str(exc).splitlines()[0]}") from exc
    compile_schema(schema)


def explain(schema: dict, data: Any, limit: int = 5) -> list[str]:
    """Why `data` breaks `schema`: "path: reason" lines, at most `limit`. Can be slow for
    schemas whose alternatives nest deeply, so callers run it under a time budget."""
    errors = sorted(compile_schema(schema).iter_errors(data), key=lambda e: list(map(str, e.instance_path)))
    return [f"{'/'.join(map(str, e.instance_path)) or '(root)'}: {e.message}" for e in errors[:limit]]
