"""GitLab's REST API as go-gitlab's Go source declares it: its types and its operations.

go-gitlab (Debian's golang-github-xanzy-go-gitlab-dev, GitLab's official Go client) is the
typed description of GitLab's API installable here: each service method builds its path with
`fmt.Sprintf("projects/%s/…", …)`, sends `s.client.NewRequest(http.MethodX, u, opt, …)` and
decodes the answer into the type its signature returns. The code is regular enough for
regexes; what they cannot read is counted in `Source.skipped`, not guessed.
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.forge.gitlab.shapes import (
    ANY,
    BOOLEAN,
    DATE_TIME,
    INTEGER,
    NUMBER,
    RAW,
    STRING,
    Operation,
    Shape,
    array,
    nullable,
    obj,
    oneof,
    ref,
)

ROOT = Path("/usr/share/gocode/src/github.com/xanzy/go-gitlab")
PREFIX = "/api/v4"

# Types whose own MarshalJSON/UnmarshalJSON (go-gitlab's issues.go, types.go,
# event_webhook_types.go) accept or send more than their Go kind says.
CODECS: dict[str, Shape] = {
    "Labels": oneof(array(STRING), STRING),  # sent comma-joined, read as either
    "ISOTime": Shape("string", format="date"),
    "BoolValue": oneof(BOOLEAN, STRING),  # "1", "0", "true", "false" too
    "NotificationLevelValue": oneof(STRING, INTEGER),
    "ApproverIDsValue": oneof(STRING, array(INTEGER)),  # "None"/"Any" or ids
    "AssigneeIDValue": oneof(STRING, INTEGER),
    "ReviewerIDValue": oneof(STRING, INTEGER),
    "MergeParams": obj({"force_remove_source_branch": oneof(BOOLEAN, STRING)}),
}
BUILTIN = {
    "string": STRING,
    "bool": BOOLEAN,
    "float32": NUMBER,
    "float64": NUMBER,
    "time.Time": DATE_TIME,
    "json.RawMessage": ANY,
    "interface{}": ANY,
    "any": ANY,
    **{
        t: INTEGER
        for t in (
            "int",
            "int8",
            "int16",
            "int32",
            "int64",
            "uint",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "byte",
            "rune",
        )
    },
}


@dataclass(frozen=True)
class Field:
    name: str  # the Go name
    type: str  # the Go type, as written
    json: str | None  # its JSON key; None: never in JSON
    url: str | None  # its query key (go-querystring); None: never in a query
    url_opts: tuple[str, ...]
    embedded: bool


@dataclass
class Source:
    structs: dict[str, list[Field]] = field(default_factory=dict)
    named: dict[str, str] = field(default_factory=dict)  # type X Y: X -> Y
    operations: list[Operation] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # calls the parse could not read

    # -- shapes ------------------------------------------------------------------------

    def shape(self, go: str, seen: frozenset[str] = frozenset(), place: str = "") -> Shape:
        """The JSON shape of Go type `go`: pointers nullable, slices and maps too (nil).
        An anonymous struct becomes a struct named after its `place` (MergeEvent.project),
        so every object has a name the supplement and the examples can add fields to."""
        go = go.strip()
        if go.startswith("*"):
            return nullable(self.shape(go[1:], seen, place))
        if go.startswith("[]"):
            return array(self.shape(go[2:], seen, place))
        if m := re.match(r"\[\d+\]", go):
            return array(self.shape(go[m.end() :], seen, place))
        if go.startswith("map["):
            close = _matching(go, go.index("["), "[", "]")
            return Shape("map", nullable=True, of=self.shape(go[close + 1 :], seen, place))
        if go.startswith("struct"):
            body = go[go.index("{") + 1 : _matching(go, go.index("{"), "{", "}")]
            if not place:
                return self.object(parse_fields(body), seen)
            self.structs.setdefault(place, parse_fields(body))
            return ref(place)
        if go.startswith("interface"):
            return ANY
        if go in BUILTIN:
            return BUILTIN[go]
        if go in CODECS:
            return CODECS[go]
        if go in self.structs:
            return ref(go)
        if go in self.named and go not in seen:
            return self.shape(self.named[go], seen | {go})
        return ANY  # another package's type (retryablehttp, …): nothing to hold it to

    def object(
        self, fields: list[Field], seen: frozenset[str] = frozenset(), owner: str = ""
    ) -> Shape:
        return obj(dict(self.json_fields(fields, seen, owner)))

    def json_fields(
        self, fields: list[Field], seen: frozenset[str] = frozenset(), owner: str = ""
    ) -> Iterator[tuple[str, Shape]]:
        for f in fields:
            if f.embedded and f.json is None:
                inner = self._struct_of(f.type)
                if inner is not None and inner not in seen:
                    yield from self.json_fields(self.structs[inner], seen | {inner}, inner)
                continue
            if f.json is not None:
                yield f.json, self.shape(f.type, seen, f"{owner}.{f.json}" if owner else "")

    def struct(self, name: str) -> Shape:
        return self.object(self.structs[name], frozenset({name}), name)

    def query(self, go: str) -> dict[str, Shape]:
        """The query parameters go-querystring makes of options type `go`."""
        name = self._struct_of(go)
        if name is None:
            return {}
        return dict(self._query_fields(self.structs[name], "", frozenset({name})))

    def _query_fields(
        self, fields: list[Field], prefix: str, seen: frozenset[str]
    ) -> Iterator[tuple[str, Shape]]:
        for f in fields:
            inner = self._struct_of(f.type)
            if f.embedded and (f.url is None or f.url == ""):
                if inner is not None and inner not in seen:
                    yield from self._query_fields(self.structs[inner], prefix, seen | {inner})
                continue
            if not f.url:
                continue
            key = f"{prefix}[{f.url}]" if prefix else f.url
            base = f.type.lstrip("*")
            if inner is not None and base not in CODECS and inner not in seen:
                yield from self._query_fields(self.structs[inner], key, seen | {inner})
                continue
            shape = self.shape(f.type)
            if base == "ApproverIDsValue":  # EncodeValues: one word, or ids as key[]
                yield key, STRING
                yield key + "[]", array(INTEGER)
                continue
            if "comma" in f.url_opts or base in ("Labels", "ISOTime"):
                shape = STRING
            elif shape.kind == "array" and "brackets" in f.url_opts:
                key += "[]"
            yield key, shape

    def _struct_of(self, go: str) -> str | None:
        """The struct a named type is or stands for (type X OtherStruct), if any."""
        name = go.strip().lstrip("*")
        for _ in range(8):
            if name in self.structs:
                return name
            if name not in self.named:
                return None
            name = self.named[name].strip().lstrip("*")
        return None


# -- the parse ---------------------------------------------------------------------------


def _matching(text: str, start: int, open_: str, close: str) -> int:
    """The index of the bracket closing the one at `start`, past strings and comments."""
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c == "`":
            i = text.index("`", i + 1)
        elif c == '"':
            m = re.compile(r'"(?:[^"\\\n]|\\.)*"').match(text, i)
            i = m.end() - 1 if m else i
        elif text.startswith("//", i):
            i = text.find("\n", i)
            if i < 0:
                break
        elif c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unbalanced {open_!r} at {start}")


def _entries(body: str) -> Iterator[str]:
    """A struct body's field declarations, one each (a nested struct stays whole)."""
    depth = 0
    current: list[str] = []
    for line in body.splitlines():
        if "`" in line:  # a comment may follow the tag: drop it, not the tag
            code = re.sub(r"(`[^`]*`)\s*//.*$", r"\1", line)
        else:
            code = re.sub(r"//.*$", "", line)
        if depth == 0 and not code.strip():
            continue
        current.append(code)
        depth += code.count("{") - code.count("}")
        if depth == 0:
            yield "\n".join(current).strip()
            current = []


TAG = re.compile(r"`([^`]*)`\s*$")
NAMED_FIELD = re.compile(r"^([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s+(\S.*)$", re.S)


def parse_fields(body: str) -> list[Field]:
    fields = []
    for entry in _entries(body):
        tags = ""
        if m := TAG.search(entry):
            tags = m.group(1)
            entry = entry[: m.start()].strip()
        json_tag = _tag(tags, "json")
        url_tag = _tag(tags, "url")
        json_name = url_name = None
        if json_tag is not None:
            json_name = json_tag.split(",")[0]
        if url_tag is not None:
            url_name = url_tag.split(",")[0].strip()
        url_opts = tuple(p.strip() for p in (url_tag or "").split(",")[1:])
        if re.fullmatch(r"\*?[\w.]+", entry):  # embedded
            if json_tag == "-" and url_tag is None:
                continue  # in neither JSON nor a query
            fields.append(
                Field(
                    entry.lstrip("*"),
                    entry,
                    None if json_name in (None, "") else json_name,
                    url_name,
                    url_opts,
                    True,
                )
            )
            continue
        m = NAMED_FIELD.match(entry)
        if not m:
            continue
        for name in re.split(r"\s*,\s*", m.group(1)):
            if not name[0].isupper():
                continue  # unexported: never marshalled
            fields.append(
                Field(
                    name,
                    m.group(2),
                    _json_key(name, json_tag),
                    None if url_name == "-" else url_name,
                    url_opts,
                    False,
                )
            )
    return fields


def _json_key(name: str, tag: str | None) -> str | None:
    """The key GitLab's JSON carries for field `name` with json tag `tag`, by encoding/json's
    rules: `-` is never in JSON (`-,` is the key "-"), a tag without a name keeps the field's.
    Go's decoder matches a key to a field's name case-insensitively, and GitLab's keys are
    lower case, so an untagged `User` is filled from `user` and declared as that."""
    if tag == "-":
        return None
    named = (tag or "").split(",")[0]
    return named if named else name.lower()


def _tag(tags: str, key: str) -> str | None:
    m = re.search(rf'(?:^|\s){key}:"([^"]*)"', tags)
    return m.group(1) if m else None


TYPE_DECL = re.compile(r"^type (\w+) (.+)$", re.M)
FUNC = re.compile(r"^func \(\w+ \*?(\w+)\) (\w+)\((.*)\) (.+) \{$", re.M)
NEW_REQUEST = re.compile(
    r"\w+\.client\.NewRequest\(\s*http\.Method(\w+),\s*(.+?),\s*(&?\w+|nil),\s*(?:options|nil)\)"
)
VERB = re.compile(r"(%[sdv])")


def _types(text: str, source: Source) -> None:
    for m in TYPE_DECL.finditer(text):
        name, rest = m.group(1), m.group(2).strip()
        if rest.startswith("struct"):
            start = m.start(2) + rest.index("{")
            body = text[start + 1 : _matching(text, start, "{", "}")]
            source.structs[name] = parse_fields(body)
        elif not rest.startswith(("interface", "func")):
            source.named[name] = re.sub(r"\s*//.*$", "", rest)


def _params(signature: str) -> dict[str, str]:
    """A Go parameter list's types by name (`a, b int` gives both int)."""
    found: dict[str, str] = {}
    pending: list[str] = []
    for part in re.split(r",\s*", signature):
        bits = part.strip().split(None, 1)
        if not bits:
            continue
        if len(bits) == 1:
            pending.append(bits[0])
            continue
        for name in [*pending, bits[0]]:
            found[name] = bits[1]
        pending = []
    return found


def _template(call: str, body: str) -> tuple[str, list[str]] | None:
    """The path format and its argument expressions, from NewRequest's path argument."""
    call = call.strip()
    if m := re.fullmatch(r'"([^"]*)"', call):
        return m.group(1), []
    sprintf = re.compile(r'fmt\.Sprintf\(\s*"([^"]*)"((?:,\s*[^,()]+(?:\([^()]*\))?)*)\s*,?\s*\)')
    if m := sprintf.fullmatch(call):
        return m.group(1), _args(m.group(2))
    if re.fullmatch(r"\w+", call):
        assigned = re.compile(
            rf"\b{call}\s*:?=\s*(?:\"([^\"]*)\"|fmt\.Sprintf\(\s*\"([^\"]*)\"((?:,\s*[^,()]+(?:\([^()]*\))?)*)\s*,?\s*\))"
        )
        found = list(assigned.finditer(body))
        if found:
            m = found[0]  # later assignments only add a suffix (repositories.go: archive format)
            if m.group(1) is not None:
                return m.group(1), []
            return m.group(2), _args(m.group(3) or "")
    return None


def _args(text: str) -> list[str]:
    return [a.strip() for a in re.findall(r",\s*([^,()]+(?:\([^()]*\))?)", text)]


def _placeholder(expr: str) -> str:
    names = re.findall(r"[A-Za-z_]\w*", expr)
    return names[-1] if names else "value"


def _path(fmt: str, args: list[str]) -> str:
    parts = VERB.split(fmt)
    out = []
    n = 0
    for part in parts:
        if VERB.fullmatch(part):
            name = _placeholder(args[n]) if n < len(args) else f"p{n}"
            out.append("{" + name + (":int" if part == "%d" else "") + "}")
            n += 1
        else:
            out.append(part)
    return PREFIX + "/" + "".join(out).lstrip("/")


def _answer(results: str, source: Source) -> Shape | None:
    results = results.strip()
    if results.startswith("("):
        results = results[1:-1]
    first = re.split(r",\s*", results)[0].strip()
    if first in ("*Response", "error"):
        return None
    if first in ("[]byte", "*bytes.Reader", "io.Reader", "*bytes.Buffer"):
        return RAW
    shape = source.shape(first)
    return Shape(
        shape.kind, False, shape.of, shape.fields, shape.ref, shape.alts, shape.format
    )  # the answer itself is never null


def _operations(name: str, text: str, source: Source) -> None:
    funcs = list(FUNC.finditer(text))
    for i, m in enumerate(funcs):
        end = funcs[i + 1].start() if i + 1 < len(funcs) else len(text)
        body = text[m.end() : end]
        body = body[: body.find("\n}") + 2]
        where = f"go-gitlab {name} {m.group(1)}.{m.group(2)}"
        calls = list(NEW_REQUEST.finditer(body))
        if not calls and "UploadRequest(" in body:
            source.skipped.append(f"{where}: a multipart upload")
        params = _params(m.group(3))
        for call in calls:
            method = call.group(1).upper()
            found = _template(call.group(2), body)
            if found is None:
                source.skipped.append(f"{where}: path {call.group(2)!r} not read")
                continue
            fmt, args = found
            opt = call.group(3).lstrip("&")
            opt_type = params.get(opt, "") if opt != "nil" else ""
            if opt != "nil" and not opt_type:
                local = re.search(rf"\b(?:var\s+{opt}\s+|{opt}\s*:=\s*&?)struct\s*\{{", body)
                if local:  # an anonymous options struct declared in the method
                    opt_type = f"{m.group(2)}.{opt}"
                    start = local.end() - 1
                    inner = body[start + 1 : _matching(body, start, "{", "}")]
                    source.structs[opt_type] = parse_fields(inner)
                named = re.search(rf"\b{opt}\s*:=\s*&?(\w+)\{{", body)
                if not opt_type and named:  # a named options struct made in the method
                    opt_type = named.group(1)
                if not opt_type:
                    source.skipped.append(f"{where}: options {opt!r} of unknown type")
            query: Mapping[str, Shape] = {}
            sent: Mapping[str, Shape] = {}
            if opt_type:
                if method in ("POST", "PUT", "PATCH"):
                    struct = source._struct_of(opt_type)
                    if struct is not None:
                        sent = dict(source.json_fields(source.structs[struct]))
                else:
                    query = source.query(opt_type)
            answer = _answer(m.group(4), source)
            if answer is None and re.search(r"\.Do\(req, (?!nil\))", body):
                answer = ANY  # a shared helper decoding into its caller's type (search.go)
            source.operations.append(
                Operation(method, _path(fmt, args), query, sent, answer, where)
            )


def parse(root: Path = ROOT) -> Source:
    source = Source()
    files = sorted(p for p in root.glob("*.go") if not p.name.endswith("_test.go"))
    texts = {p.name: p.read_text() for p in files}
    for text in texts.values():
        _types(text, source)
    for name, text in texts.items():
        _operations(name, text, source)
    return source
