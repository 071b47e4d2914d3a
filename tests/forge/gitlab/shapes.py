"""The internal form of the test GitLab's API description: JSON shapes and operations.

go-gitlab's Go types (parsed by gosource.py) and the hand-written supplement (supplement.py)
both land in this one small form, so description.py checks every request, answer and
webhook delivery the same way whichever source declared it.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

# Shape kinds: JSON scalars, "any" (interface{}, json.RawMessage), "array", "map" (a Go map:
# any keys, values of one shape), "object" (fields inline), "ref" (a named Go struct, found in
# the description's table so recursive types stay finite), "oneof" (custom JSON codecs that
# accept several forms), "raw" (a text answer: job traces, raw files).
KINDS = (
    "string",
    "integer",
    "number",
    "boolean",
    "any",
    "array",
    "map",
    "object",
    "ref",
    "oneof",
    "raw",
)


@dataclass(frozen=True)
class Shape:
    kind: str
    nullable: bool = False
    of: "Shape | None" = None  # items of an array, values of a map
    fields: Mapping[str, "Shape"] = field(default_factory=dict)  # an object's fields
    ref: str = ""  # a named struct's name
    alts: tuple["Shape", ...] = ()  # a oneof's alternatives
    format: str = ""  # "date-time" or "date" on strings


@dataclass(frozen=True)
class Operation:
    method: str  # GET, POST, PUT, DELETE, PATCH
    template: str  # /api/v4/projects/{project}/merge_requests/{mergeRequest}
    query: Mapping[str, Shape]  # declared query parameters (GET, DELETE, HEAD)
    body: Mapping[str, Shape]  # declared JSON body fields (POST, PUT, PATCH)
    answer: Shape | None  # None: the client reads no body
    source: str  # where it was declared: a go-gitlab file and function, or a doc URL


STRING = Shape("string")
INTEGER = Shape("integer")
NUMBER = Shape("number")
BOOLEAN = Shape("boolean")
ANY = Shape("any", nullable=True)
RAW = Shape("raw")
DATE_TIME = Shape("string", format="date-time")


def nullable(shape: Shape) -> Shape:
    return Shape(shape.kind, True, shape.of, shape.fields, shape.ref, shape.alts, shape.format)


def array(items: Shape) -> Shape:
    return Shape("array", nullable=True, of=items)  # a Go slice: nil marshals as null


def obj(fields: Mapping[str, Shape]) -> Shape:
    return Shape("object", fields=dict(fields))


def ref(name: str) -> Shape:
    return Shape("ref", ref=name)


def oneof(*alts: Shape) -> Shape:
    return Shape("oneof", alts=alts)
