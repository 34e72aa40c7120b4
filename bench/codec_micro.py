"""Micro-benchmark of the hot-path BER codec (vmdir.ber).

Run: ``.venv/bin/python -m bench.codec_micro`` (or ``python bench/codec_micro.py``).
Prints operations per second for a typical search request and a 10-attribute
entry, in both directions, plus the response encodings the server sends most.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vmdir.ber import decode_message, decode_response, encode_request, encode_response, peek_frame  # noqa: E402
from vmdir.proto.connection import LDAPServerConnection  # noqa: E402
from vmdir.proto.messages import (  # noqa: E402
    AddResponse, And, BindResponse, Equality, ModifyResponse, SearchRequest, SearchResultDone,
    SearchResultEntry,
)
from vmdir.proto.results import ResultCode  # noqa: E402

SEARCH = SearchRequest(
    base="dc=lightwave,dc=local", scope=2, deref=0, size_limit=0, time_limit=0, types_only=False,
    filter=And((Equality("objectClass", b"inetOrgPerson"), Equality("uid", b"user004217"))),
    attributes=("cn", "mail", "uid"),
)
ENTRY = SearchResultEntry(
    "uid=user004217,ou=people,dc=lightwave,dc=local",
    (
        ("objectClass", (b"top", b"person", b"organizationalPerson", b"inetOrgPerson")),
        ("uid", (b"user004217",)),
        ("cn", (b"User 004217",)),
        ("sn", (b"004217",)),
        ("givenName", (b"User",)),
        ("mail", (b"user004217@lightwave.local",)),
        ("telephoneNumber", (b"+1 555 0100 4217",)),
        ("description", (b"Benchmark user number 4217 of the synthetic data set",)),
        ("employeeNumber", (b"4217",)),
        ("userPassword", (b"{SSHA}qUqP5cyxm6YcTAhz05Hph5gvu9M5sdfu",)),
    ),
)


def rate(fn: Callable[[], object], repeat: int = 7, number: int = 2000) -> float:
    """Best of ``repeat`` timed batches (the machine may be shared: best is least noisy)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, time.perf_counter() - t0)
    return number / best


def main() -> None:
    search_pdu = encode_request(4217, SEARCH)
    entry_pdu = encode_response(4217, ENTRY)
    done = SearchResultDone(ResultCode.success)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("search request   decode (server)", lambda: decode_message(search_pdu)),
        ("search request   peek+decode", lambda: decode_message(search_pdu[:peek_frame(search_pdu, 0, 1 << 20)])),
        ("search request   encode (client)", lambda: encode_request(4217, SEARCH)),
        ("10-attr entry    encode (server)", lambda: encode_response(4217, ENTRY)),
        ("10-attr entry    decode (client)", lambda: decode_response(entry_pdu)),
        ("SearchResultDone encode", lambda: encode_response(4217, done)),
        ("ModifyResponse   encode", lambda: encode_response(4217, ModifyResponse(ResultCode.success))),
        ("AddResponse      encode", lambda: encode_response(4217, AddResponse(ResultCode.success))),
        ("BindResponse     encode", lambda: encode_response(4217, BindResponse(ResultCode.success))),
    ]
    conn = LDAPServerConnection(max_outstanding=1 << 30)
    ids = iter(range(1, 1 << 30))

    def connection_round_trip() -> None:
        msgid = next(ids)
        conn.receive_data(encode_request(msgid, SEARCH))  # (client-side encode included)
        ev = conn.next_event()
        conn.send(msgid, ENTRY)
        conn.send(msgid, done)
        conn.next_event()  # NEED_DATA

    cases.append(("connection: search in, entry+done out (incl. client encode)", connection_round_trip))
    print("python %s  (search request %d bytes, entry %d bytes)" % (
        sys.version.split()[0], len(search_pdu), len(entry_pdu)))
    for name, fn in cases:
        r = rate(fn)
        print("%-60s %10.0f ops/s  %6.2f us/op" % (name, r, 1e6 / r))


if __name__ == "__main__":
    main()
