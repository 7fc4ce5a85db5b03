"""Hypothesis strategies for config.json: values drawn from the project's own
schema (schemas/config.schema.json), so that most of them pass the
validator and reach the code behind it, and hostile values that do not."""
import copy
import json
import os

from hypothesis import strategies as st

SCHEMA = os.path.join(os.path.dirname(__file__), "..", "..", "schemas", "config.schema.json")
with open(SCHEMA) as f:
    _SCHEMA = json.load(f)

_EDGE_INTS = [0, 1, -1, 2**31 - 1, 2**31, 2**32, 2**53, 2**63 - 1, 2**63, 2**64, 2**100, -2**63]

# What an attacker or a bad generator writes where the schema wants anything else.
HOSTILE = st.one_of(
    st.sampled_from(_EDGE_INTS), st.floats(allow_nan=False), st.booleans(), st.none(),
    st.text(max_size=40), st.sampled_from(["", "/", "..", "../../..", "a\nb", "\u202e", "x" * 5000]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.integers(min_value=1, max_value=200).map(lambda n: json.loads("[" * n + "]" * n)),
)


def _resolve(node):
    while "$ref" in node:
        node = _SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def from_schema(node, depth=0):
    """A strategy for values valid for schema `node` (patterns aside: those
    strings are drawn freely, and often refused, which is fine)."""
    node = _resolve(node)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    types = node.get("type", "object")
    if isinstance(types, list):
        return st.one_of(*(from_schema(dict(node, type=t), depth) for t in types))
    if types == "integer":
        lo, hi = node.get("minimum"), node.get("maximum")
        edges = [i for i in _EDGE_INTS if (lo is None or i >= lo) and (hi is None or i <= hi)]
        return st.one_of(st.integers(min_value=lo, max_value=hi), st.sampled_from(edges or [lo or 0]))
    if types == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if types == "boolean":
        return st.booleans()
    if types == "null":
        return st.none()
    if types == "string":
        return st.one_of(st.text(max_size=30), st.sampled_from(["/", "/tmp", "rw", "ro", "bind", "proc", "0"]))
    if types == "array":
        return st.lists(from_schema(node.get("items", {"type": "string"}), depth + 1),
                        min_size=node.get("minItems", 0), max_size=0 if depth > 4 else 3)
    props = node.get("properties", {})
    if not props:
        return st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=3)
    required = {k: from_schema(v, depth + 1) for k, v in props.items() if k in node.get("required", [])}
    optional = {} if depth > 4 else {k: from_schema(v, depth + 1) for k, v in props.items()
                                     if k not in required}
    return st.fixed_dictionaries(required, optional=optional)


def schema_at(path):
    """The schema node for a config path (a tuple of keys and indexes)."""
    node = _SCHEMA
    for key in path:
        node = _resolve(node)
        if isinstance(key, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(key) or node.get("additionalProperties") \
                or next(iter(node.get("patternProperties", {}).values()), {})
    return node


def nodes(obj, path=()):
    """Every (path, value) in a JSON document, the root excluded."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = enumerate(obj)
    else:
        return
    for k, v in items:
        yield path + (k,), v
        yield from nodes(v, path + (k,))


def set_at(doc, path, value):
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


def delete_at(doc, path):
    for key in path[:-1]:
        doc = doc[key]
    del doc[path[-1]]


@st.composite
def mutated(draw, bases):
    """One of `bases`, with 1-3 changes: a field replaced by a value valid
    for its schema, or by a hostile one, a field deleted, a list grown, a
    known optional section of the schema added whole."""
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["schema", "hostile", "delete", "grow", "section"]))
        if kind == "section":
            key = draw(st.sampled_from(sorted(_resolve(schema_at(("linux",)))["properties"])))
            doc.setdefault("linux", {})[key] = draw(from_schema(schema_at(("linux", key))))
            continue
        found = list(nodes(doc))
        if not found:
            break
        path, value = draw(st.sampled_from(found))
        if kind == "schema":
            set_at(doc, path, draw(from_schema(schema_at(path))))
        elif kind == "hostile":
            set_at(doc, path, draw(HOSTILE))
        elif kind == "delete":
            delete_at(doc, path)
        elif isinstance(value, list) and value:
            set_at(doc, path, value * draw(st.integers(2, 50)))
    return doc
