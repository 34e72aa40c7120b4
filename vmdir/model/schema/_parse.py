"""RFC 4512 schema definition parser and printer.

Parses the four description kinds the directory ships and publishes
(attributeTypes, objectClasses, ldapSyntaxes, matchingRules; matchingRuleUse is
parsed for completeness) into frozen ``*Def`` values, and prints them back in
canonical RFC 4512 text (the form published in the subschema subentry).

Definition files use the slapd.conf schema-file layout:

    # comment
    attributetype ( 2.5.4.3 NAME ( 'cn' 'commonName' )
        SUP name )

A statement starts with a keyword in column 0 (``attributetype``,
``objectclass``, ``ldapsyntax``, ``matchingrule``; plural and LDIF forms such as
``attributeTypes:`` are accepted too) and continues on lines that start with
white space. Lines whose first non-blank character is ``#`` are comments.

The parser is deliberately a little more forgiving than RFC 4512 in the same
ways slapd is: keywords in any order and any case, quoted OIDs
(``SYNTAX '1.3.6.1.4.1.1466.115.121.1.12'``), and ``SUP ( a b )`` lists
without ``$``. It is strict about what matters: unknown keywords, repeated
keywords, unbalanced parentheses and malformed OIDs raise
:class:`SchemaSyntaxError`.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Union

__all__ = [
    "SchemaSyntaxError",
    "Extension",
    "AttributeTypeDef",
    "ObjectClassDef",
    "SyntaxDef",
    "MatchingRuleDef",
    "MatchingRuleUseDef",
    "Definition",
    "parse_attribute_type",
    "parse_object_class",
    "parse_syntax",
    "parse_matching_rule",
    "parse_matching_rule_use",
    "parse_schema_text",
    "is_numericoid",
    "is_descr",
    "USAGES",
    "MAX_DEFINITION_LENGTH",
]

MAX_DEFINITION_LENGTH = 64 * 1024
"""Longest single definition accepted (a guard against hostile schema entries)."""

USAGES = ("userApplications", "directoryOperation", "distributedOperation", "dSAOperation")
_USAGE_BY_LOWER = {u.lower(): u for u in USAGES}

_NUMERICOID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+\Z")
_DESCR = re.compile(r"[A-Za-z][A-Za-z0-9-]*\Z")
_NOIDLEN = re.compile(r"((?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+)(?:\{([0-9]+)\})?\Z")
_TOKEN = re.compile(r"""\s*(?:(\()|(\))|(\$)|'((?:[^'\\]|\\.)*)'|([^\s()$']+))""", re.S)


class SchemaSyntaxError(ValueError):
    """A schema definition is not well-formed (or refers to unknown elements)."""


def is_numericoid(s: str) -> bool:
    return _NUMERICOID.match(s) is not None


def is_descr(s: str) -> bool:
    return _DESCR.match(s) is not None


Extension = tuple[str, tuple[str, ...]]


# ---------------------------------------------------------------- printing helpers


def _qd(s: str) -> str:
    return "'" + s.replace("\\", "\\5C").replace("'", "\\27") + "'"


def _qdescrs(names: tuple[str, ...]) -> str:
    if len(names) == 1:
        return _qd(names[0])
    return "( " + " ".join(_qd(n) for n in names) + " )"


def _oids(oids: tuple[str, ...]) -> str:
    if len(oids) == 1:
        return oids[0]
    return "( " + " $ ".join(oids) + " )"


def _ext_text(exts: tuple[Extension, ...]) -> list[str]:
    out = []
    for name, values in exts:
        if len(values) == 1:
            out.append(f"{name} {_qd(values[0])}")
        else:
            out.append(f"{name} ( " + " ".join(_qd(v) for v in values) + " )")
    return out


def _common_head(oid: str, names: tuple[str, ...], desc: str | None, obsolete: bool) -> list[str]:
    parts = ["(", oid]
    if names:
        parts += ["NAME", _qdescrs(names)]
    if desc is not None:
        parts += ["DESC", _qd(desc)]
    if obsolete:
        parts.append("OBSOLETE")
    return parts


# ---------------------------------------------------------------- definition values


@dataclass(frozen=True, slots=True)
class AttributeTypeDef:
    oid: str
    names: tuple[str, ...] = ()
    desc: str | None = None
    obsolete: bool = False
    sup: str | None = None
    equality: str | None = None
    ordering: str | None = None
    substr: str | None = None
    syntax: str | None = None
    syntax_len: int | None = None
    single_value: bool = False
    collective: bool = False
    no_user_modification: bool = False
    usage: str = "userApplications"
    extensions: tuple[Extension, ...] = ()

    def to_text(self) -> str:
        p = _common_head(self.oid, self.names, self.desc, self.obsolete)
        if self.sup:
            p += ["SUP", self.sup]
        if self.equality:
            p += ["EQUALITY", self.equality]
        if self.ordering:
            p += ["ORDERING", self.ordering]
        if self.substr:
            p += ["SUBSTR", self.substr]
        if self.syntax:
            p += ["SYNTAX", self.syntax + (f"{{{self.syntax_len}}}" if self.syntax_len is not None else "")]
        if self.single_value:
            p.append("SINGLE-VALUE")
        if self.collective:
            p.append("COLLECTIVE")
        if self.no_user_modification:
            p.append("NO-USER-MODIFICATION")
        if self.usage != "userApplications":
            p += ["USAGE", self.usage]
        p += _ext_text(self.extensions)
        p.append(")")
        return " ".join(p)


@dataclass(frozen=True, slots=True)
class ObjectClassDef:
    oid: str
    names: tuple[str, ...] = ()
    desc: str | None = None
    obsolete: bool = False
    sup: tuple[str, ...] = ()
    kind: str = "STRUCTURAL"
    must: tuple[str, ...] = ()
    may: tuple[str, ...] = ()
    extensions: tuple[Extension, ...] = ()

    def to_text(self) -> str:
        p = _common_head(self.oid, self.names, self.desc, self.obsolete)
        if self.sup:
            p += ["SUP", _oids(self.sup)]
        p.append(self.kind)
        if self.must:
            p += ["MUST", _oids(self.must)]
        if self.may:
            p += ["MAY", _oids(self.may)]
        p += _ext_text(self.extensions)
        p.append(")")
        return " ".join(p)


@dataclass(frozen=True, slots=True)
class SyntaxDef:
    oid: str
    desc: str | None = None
    extensions: tuple[Extension, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return ()

    def to_text(self) -> str:
        p = ["(", self.oid]
        if self.desc is not None:
            p += ["DESC", _qd(self.desc)]
        p += _ext_text(self.extensions)
        p.append(")")
        return " ".join(p)


@dataclass(frozen=True, slots=True)
class MatchingRuleDef:
    oid: str
    names: tuple[str, ...] = ()
    desc: str | None = None
    obsolete: bool = False
    syntax: str = ""
    extensions: tuple[Extension, ...] = ()

    def to_text(self) -> str:
        p = _common_head(self.oid, self.names, self.desc, self.obsolete)
        p += ["SYNTAX", self.syntax]
        p += _ext_text(self.extensions)
        p.append(")")
        return " ".join(p)


@dataclass(frozen=True, slots=True)
class MatchingRuleUseDef:
    oid: str
    names: tuple[str, ...] = ()
    desc: str | None = None
    obsolete: bool = False
    applies: tuple[str, ...] = ()
    extensions: tuple[Extension, ...] = ()

    def to_text(self) -> str:
        p = _common_head(self.oid, self.names, self.desc, self.obsolete)
        p += ["APPLIES", _oids(self.applies)]
        p += _ext_text(self.extensions)
        p.append(")")
        return " ".join(p)


Definition = Union[AttributeTypeDef, ObjectClassDef, SyntaxDef, MatchingRuleDef, MatchingRuleUseDef]

# ---------------------------------------------------------------- tokenizer


_QD_ESCAPE = re.compile(r"\\([0-9A-Fa-f]{2})")


def _unescape_qd(s: str) -> str:
    if "\\" not in s:
        return s
    return _QD_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), s)


def _tokenize(text: str) -> list[tuple[str, str]]:
    toks: list[tuple[str, str]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos:].strip() == "":
                break
            raise SchemaSyntaxError(f"unexpected character at offset {pos}: {text[pos:pos + 20]!r}")
        if m.end() == pos:  # only white space remained
            break
        pos = m.end()
        if m.group(1):
            toks.append(("(", "("))
        elif m.group(2):
            toks.append((")", ")"))
        elif m.group(3):
            toks.append(("$", "$"))
        elif m.group(4) is not None:
            toks.append(("q", _unescape_qd(m.group(4))))
        elif m.group(5):
            toks.append(("w", m.group(5)))
        else:  # trailing white space
            break
    return toks


class _Cursor:
    __slots__ = ("toks", "i", "what")

    def __init__(self, toks: list[tuple[str, str]], what: str) -> None:
        self.toks = toks
        self.i = 0
        self.what = what

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise SchemaSyntaxError(f"{self.what}: unexpected end of definition")
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, kind: str) -> str:
        k, v = self.next()
        if k != kind:
            raise SchemaSyntaxError(f"{self.what}: expected {kind!r}, got {v!r}")
        return v

    def oid(self) -> str:
        k, v = self.next()
        if k not in ("w", "q"):
            raise SchemaSyntaxError(f"{self.what}: expected an OID or name, got {v!r}")
        if not (is_numericoid(v) or is_descr(v)):
            raise SchemaSyntaxError(f"{self.what}: malformed OID or name {v!r}")
        return v

    def oids(self) -> tuple[str, ...]:
        t = self.peek()
        if t is None:
            raise SchemaSyntaxError(f"{self.what}: unexpected end of definition")
        if t[0] != "(":
            return (self.oid(),)
        self.next()
        out = [self.oid()]
        while True:
            k, v = self.next()
            if k == ")":
                return tuple(out)
            if k == "$":
                out.append(self.oid())
            elif k in ("w", "q"):  # slapd tolerates missing '$'
                self.i -= 1
                out.append(self.oid())
            else:
                raise SchemaSyntaxError(f"{self.what}: unexpected {v!r} in OID list")

    def qdescrs(self) -> tuple[str, ...]:
        t = self.peek()
        if t is None:
            raise SchemaSyntaxError(f"{self.what}: unexpected end of definition")
        if t[0] == "q":
            self.next()
            if not is_descr(t[1]):
                raise SchemaSyntaxError(f"{self.what}: malformed name {t[1]!r}")
            return (t[1],)
        self.expect("(")
        out = []
        while True:
            k, v = self.next()
            if k == ")":
                break
            if k != "q" or not is_descr(v):
                raise SchemaSyntaxError(f"{self.what}: malformed name {v!r}")
            out.append(v)
        if not out:
            raise SchemaSyntaxError(f"{self.what}: empty NAME list")
        return tuple(out)

    def qdstring(self) -> str:
        return self.expect("q")

    def qdstrings(self) -> tuple[str, ...]:
        t = self.peek()
        if t is not None and t[0] == "q":
            self.next()
            return (t[1],)
        self.expect("(")
        out: list[str] = []
        while True:
            k, v = self.next()
            if k == ")":
                return tuple(out)
            if k != "q":
                raise SchemaSyntaxError(f"{self.what}: expected a quoted string, got {v!r}")
            out.append(v)


_FLAG = "flag"
_AT_KEYWORDS = {
    "NAME": "qdescrs", "DESC": "qdstring", "OBSOLETE": _FLAG, "SUP": "oid", "EQUALITY": "oid",
    "ORDERING": "oid", "SUBSTR": "oid", "SYNTAX": "noidlen", "SINGLE-VALUE": _FLAG,
    "COLLECTIVE": _FLAG, "NO-USER-MODIFICATION": _FLAG, "USAGE": "usage",
}
_OC_KEYWORDS = {
    "NAME": "qdescrs", "DESC": "qdstring", "OBSOLETE": _FLAG, "SUP": "oids", "ABSTRACT": _FLAG,
    "STRUCTURAL": _FLAG, "AUXILIARY": _FLAG, "MUST": "oids", "MAY": "oids",
}
_SYN_KEYWORDS = {"DESC": "qdstring"}
_MR_KEYWORDS = {"NAME": "qdescrs", "DESC": "qdstring", "OBSOLETE": _FLAG, "SYNTAX": "noidlen"}
_MRU_KEYWORDS = {"NAME": "qdescrs", "DESC": "qdstring", "OBSOLETE": _FLAG, "APPLIES": "oids"}


def _parse_generic(text: str, keywords: dict[str, str], what: str) -> tuple[str, dict[str, Any], tuple[Extension, ...]]:
    if len(text) > MAX_DEFINITION_LENGTH:
        raise SchemaSyntaxError(f"{what}: definition too long")
    cur = _Cursor(_tokenize(text), what)
    cur.expect("(")
    k, oid = cur.next()
    if k not in ("w", "q") or not is_numericoid(oid):
        raise SchemaSyntaxError(f"{what}: expected a numeric OID, got {oid!r}")
    cur.what = f"{what} {oid}"
    fields: dict[str, Any] = {}
    exts: list[Extension] = []
    while True:
        k, v = cur.next()
        if k == ")":
            break
        if k != "w":
            raise SchemaSyntaxError(f"{cur.what}: unexpected {v!r}")
        kw = v.upper()
        if kw.startswith("X-") and len(kw) > 2:
            exts.append((v, cur.qdstrings()))
            continue
        kind = keywords.get(kw)
        if kind is None:
            raise SchemaSyntaxError(f"{cur.what}: unknown keyword {v!r}")
        if kw in fields:
            raise SchemaSyntaxError(f"{cur.what}: keyword {kw} repeated")
        if kind == _FLAG:
            fields[kw] = True
        elif kind == "qdescrs":
            fields[kw] = cur.qdescrs()
        elif kind == "qdstring":
            fields[kw] = cur.qdstring()
        elif kind == "oid":
            fields[kw] = cur.oid()
        elif kind == "oids":
            fields[kw] = cur.oids()
        elif kind == "noidlen":
            k2, v2 = cur.next()
            m = _NOIDLEN.match(v2) if k2 in ("w", "q") else None
            if m is None:
                raise SchemaSyntaxError(f"{cur.what}: malformed SYNTAX {v2!r}")
            fields[kw] = (m.group(1), int(m.group(2)) if m.group(2) is not None else None)
        elif kind == "usage":
            k2, v2 = cur.next()
            usage = _USAGE_BY_LOWER.get(v2.lower()) if k2 == "w" else None
            if usage is None:
                raise SchemaSyntaxError(f"{cur.what}: unknown USAGE {v2!r}")
            fields[kw] = usage
    if cur.peek() is not None:
        raise SchemaSyntaxError(f"{cur.what}: trailing text after ')'")
    return oid, fields, tuple(exts)


def parse_attribute_type(text: str) -> AttributeTypeDef:
    """Parse an RFC 4512 AttributeTypeDescription. Raises SchemaSyntaxError."""
    oid, f, exts = _parse_generic(text, _AT_KEYWORDS, "attributeType")
    syntax, slen = f.get("SYNTAX", (None, None))
    if not (f.get("SUP") or syntax):
        raise SchemaSyntaxError(f"attributeType {oid}: needs SUP or SYNTAX")
    return AttributeTypeDef(
        oid=oid,
        names=f.get("NAME", ()),
        desc=f.get("DESC"),
        obsolete=bool(f.get("OBSOLETE")),
        sup=f.get("SUP"),
        equality=f.get("EQUALITY"),
        ordering=f.get("ORDERING"),
        substr=f.get("SUBSTR"),
        syntax=syntax,
        syntax_len=slen,
        single_value=bool(f.get("SINGLE-VALUE")),
        collective=bool(f.get("COLLECTIVE")),
        no_user_modification=bool(f.get("NO-USER-MODIFICATION")),
        usage=f.get("USAGE", "userApplications"),
        extensions=exts,
    )


def parse_object_class(text: str) -> ObjectClassDef:
    """Parse an RFC 4512 ObjectClassDescription. Raises SchemaSyntaxError."""
    oid, f, exts = _parse_generic(text, _OC_KEYWORDS, "objectClass")
    kinds = [k for k in ("ABSTRACT", "STRUCTURAL", "AUXILIARY") if f.get(k)]
    if len(kinds) > 1:
        raise SchemaSyntaxError(f"objectClass {oid}: more than one kind")
    return ObjectClassDef(
        oid=oid,
        names=f.get("NAME", ()),
        desc=f.get("DESC"),
        obsolete=bool(f.get("OBSOLETE")),
        sup=f.get("SUP", ()),
        kind=kinds[0] if kinds else "STRUCTURAL",
        must=f.get("MUST", ()),
        may=f.get("MAY", ()),
        extensions=exts,
    )


def parse_syntax(text: str) -> SyntaxDef:
    """Parse an RFC 4512 SyntaxDescription. Raises SchemaSyntaxError."""
    oid, f, exts = _parse_generic(text, _SYN_KEYWORDS, "ldapSyntax")
    return SyntaxDef(oid=oid, desc=f.get("DESC"), extensions=exts)


def parse_matching_rule(text: str) -> MatchingRuleDef:
    """Parse an RFC 4512 MatchingRuleDescription. Raises SchemaSyntaxError."""
    oid, f, exts = _parse_generic(text, _MR_KEYWORDS, "matchingRule")
    if "SYNTAX" not in f:
        raise SchemaSyntaxError(f"matchingRule {oid}: SYNTAX is required")
    syntax, _ = f["SYNTAX"]
    return MatchingRuleDef(
        oid=oid,
        names=f.get("NAME", ()),
        desc=f.get("DESC"),
        obsolete=bool(f.get("OBSOLETE")),
        syntax=syntax,
        extensions=exts,
    )


def parse_matching_rule_use(text: str) -> MatchingRuleUseDef:
    """Parse an RFC 4512 MatchingRuleUseDescription. Raises SchemaSyntaxError."""
    oid, f, exts = _parse_generic(text, _MRU_KEYWORDS, "matchingRuleUse")
    if "APPLIES" not in f:
        raise SchemaSyntaxError(f"matchingRuleUse {oid}: APPLIES is required")
    return MatchingRuleUseDef(
        oid=oid,
        names=f.get("NAME", ()),
        desc=f.get("DESC"),
        obsolete=bool(f.get("OBSOLETE")),
        applies=f["APPLIES"],
        extensions=exts,
    )


_STATEMENTS: dict[str, Callable[[str], Definition]] = {
    "attributetype": parse_attribute_type,
    "attributetypes": parse_attribute_type,
    "objectclass": parse_object_class,
    "objectclasses": parse_object_class,
    "ldapsyntax": parse_syntax,
    "ldapsyntaxes": parse_syntax,
    "matchingrule": parse_matching_rule,
    "matchingrules": parse_matching_rule,
    "matchingruleuse": parse_matching_rule_use,
}


def parse_schema_text(text: str, source: str = "<string>") -> list[Definition]:
    """Parse a schema file (slapd.conf schema-file layout, see module docs).

    Returns the definitions in file order. Raises SchemaSyntaxError naming
    ``source`` and the line where the bad statement starts.
    """
    out: list[Definition] = []
    stmt: list[str] = []
    start = 0

    def flush() -> None:
        if not stmt:
            return
        body = " ".join(stmt).strip()
        stmt.clear()
        kw, _, rest = body.partition(" ")
        kw = kw.rstrip(":").lower()
        if ":" in kw:  # "attributeTypes:(" without a space
            kw, _, more = kw.partition(":")
            rest = more + " " + rest
        parser = _STATEMENTS.get(kw)
        if parser is None:
            raise SchemaSyntaxError(f"{source}:{start}: unknown statement {kw!r}")
        try:
            out.append(parser(rest.strip()))
        except SchemaSyntaxError as e:
            raise SchemaSyntaxError(f"{source}:{start}: {e}") from None

    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0] in " \t":
            if not stmt:
                raise SchemaSyntaxError(f"{source}:{lineno}: continuation line without a statement")
            stmt.append(stripped)
        else:
            flush()
            start = lineno
            stmt.append(stripped)
    flush()
    return out
