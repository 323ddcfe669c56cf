#!/usr/bin/env python3
"""Writes the seed inputs of fuzz_h2 (tests/fuzz/corpus/h2/) and fuzz_h2_up
(tests/fuzz/corpus/h2_up/): HTTP/2 frames with HPACK-encoded header blocks, written by hand
here so that the seeds can be read and changed. Run it from anywhere; it rewrites the
files it owns and leaves others alone. Only for making seeds: the build never runs it."""
import os
import struct

DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINDOW, CONT = range(10)
ES, EH, PADDED, PRIO, ACK = 0x1, 0x4, 0x8, 0x20, 0x1


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def lit(name, value):
    """A literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def block(*fields):
    return b"".join(lit(n, v) for n, v in fields)


def req(method="GET", path="/", extra=()):
    return block((":method", method), (":scheme", "http"), (":authority", "f"), (":path", path), *extra)


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


S0 = settings()
S_ACK = frame(SETTINGS, ACK, 0)

down = {
    "get-direct": S0 + frame(HEADERS, ES | EH, 1, req()),
    "get-up": S0 + frame(HEADERS, ES | EH, 1, req(path="/up")),
    "get-indexed": S0 + frame(HEADERS, ES | EH, 1, b"\x82\x84\x86\x41\x01f"),
    "post-up": S0 + frame(HEADERS, EH, 1, req("POST", "/up", [("content-length", "5")]))
    + frame(DATA, ES, 1, b"hello"),
    "trailers": S0 + frame(HEADERS, EH, 1, req("POST", "/up", [("te", "trailers")]))
    + frame(DATA, 0, 1, b"abc") + frame(HEADERS, ES | EH, 1, block(("x-t", "1"))),
    "many-streams": S0 + b"".join(frame(HEADERS, ES | EH, sid, req(path="/up" if sid % 4 == 1 else "/"))
                                  for sid in (1, 3, 5, 7))
    + frame(PING, 0, 0, b"12345678") + frame(WINDOW, 0, 0, struct.pack(">I", 65535)),
    "rst": S0 + frame(HEADERS, EH, 1, req("POST", "/up")) + frame(RST, 0, 1, struct.pack(">I", 8))
    + frame(HEADERS, ES | EH, 3, req()),
    "continuation": S0 + frame(HEADERS, ES, 1, req(path="/up")[:20])
    + frame(CONT, EH, 1, req(path="/up")[20:]),
    "connect": S0 + frame(HEADERS, EH, 1, block((":method", "CONNECT"), (":authority", "f:80")))
    + frame(DATA, 0, 1, b"x"),
    "connect-tunnel": S0 + frame(HEADERS, EH, 1, block((":method", "CONNECT"), (":authority", "f:80")))
    + frame(DATA, 0, 1, b"GET / HTTP/1.1\r\n\r\n") + frame(DATA, ES, 1, b"tail\r\n\r\n")
    + frame(HEADERS, ES | EH, 3, req(path="/up")),
    "connect-rst": S0 + frame(HEADERS, EH, 1, block((":method", "CONNECT"), (":authority", "f:80")))
    + frame(DATA, 0, 1, b"abc\r\n\r\n") + frame(WINDOW, 0, 1, struct.pack(">I", 4096))
    + frame(RST, 0, 1, struct.pack(">I", 8)),
    "goaway": S0 + frame(HEADERS, ES | EH, 1, req(path="/up")) + frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)),
    "small-window": settings((4, 1), (5, 16384)) + frame(HEADERS, ES | EH, 1, req(path="/up"))
    + frame(WINDOW, 0, 1, struct.pack(">I", 1)) + frame(WINDOW, 0, 0, struct.pack(">I", 100)),
    "padded-priority": S0 + frame(HEADERS, ES | EH | PADDED | PRIO, 1,
                                  b"\x02" + struct.pack(">IB", 0, 15) + req(path="/up") + b"\x00\x00")
    + frame(PRIORITY, 0, 3, struct.pack(">IB", 1, 7)),
    "bad-upper": S0 + frame(HEADERS, ES | EH, 1, req(extra=[("X-Upper", "1")])),
    "bad-connection": S0 + frame(HEADERS, ES | EH, 1, req(extra=[("connection", "close")])),
    "bad-content-length": S0 + frame(HEADERS, EH, 1, req("POST", "/up", [("content-length", "2")]))
    + frame(DATA, ES, 1, b"hello"),
    "settings-ack": S0 + S_ACK + frame(HEADERS, ES | EH, 1, req(path="/up")),
    # /h2 goes to an HTTP/2 upstream (answers with a body and trailers)
    "h2-get": S0 + frame(HEADERS, ES | EH, 1, req(path="/h2", extra=[("te", "trailers")])),
    "h2-post": S0 + frame(HEADERS, EH, 1, req("POST", "/h2", [("content-length", "5")]))
    + frame(DATA, ES, 1, b"hello"),
    "h2-rst": S0 + frame(HEADERS, EH, 1, req("POST", "/h2")) + frame(DATA, 0, 1, b"abc")
    + frame(RST, 0, 1, struct.pack(">I", 8)) + frame(HEADERS, ES | EH, 3, req(path="/h2")),
    "h2-trailers": S0 + frame(HEADERS, EH, 1, req("POST", "/h2", [("te", "trailers")]))
    + frame(DATA, 0, 1, b"abc") + frame(HEADERS, ES | EH, 1, block(("grpc-timeout", "1S"))),
    # RFC 8441: a websocket over a stream; /up's upstream answers an Upgrade with 101 and
    # echoes, "/" is a direct response (200 without a switch)
    "ext-connect": S0 + frame(HEADERS, EH, 1, block((":method", "CONNECT"), (":protocol", "websocket"),
                                                    (":scheme", "http"), (":authority", "f"),
                                                    (":path", "/up")))
    + frame(DATA, 0, 1, b"\x81\x02hi") + frame(DATA, ES, 1, b"\x88\x00"),
    "ext-connect-mixed": S0 + frame(HEADERS, EH, 1, block((":method", "CONNECT"), (":protocol", "websocket"),
                                                          (":scheme", "http"), (":authority", "f"),
                                                          (":path", "/")))
    + frame(HEADERS, ES | EH, 3, req(path="/up")) + frame(DATA, 0, 1, b"early")
    + frame(RST, 0, 1, struct.pack(">I", 8)),
    "h2-mixed": S0 + b"".join(frame(HEADERS, ES | EH, sid, req(path=p))
                              for sid, p in ((1, "/h2"), (3, "/up"), (5, "/h2"), (7, "/")))
    + frame(WINDOW, 0, 0, struct.pack(">I", 65535)),
}

# fuzz_h2_up: the first byte picks the client's request (0 GET, 1 HEAD, 2 POST, 3 trailers,
# 4: a GET then a WebSocket Upgrade, an extended CONNECT on stream 3 when SETTINGS allow it)
resp = block((":status", "200"), ("content-length", "2"))
OK1 = frame(HEADERS, EH, 1, resp) + frame(DATA, ES, 1, b"ok")  # the GET's answer


def ws(part1, part2):
    """A two-part input of fuzz_h2_up's GET-then-Upgrade request (upstream_fuzz.h)."""
    assert len(part1) < 256
    return b"\x04" + bytes([len(part1)]) + part1 + part2


up = {
    "ok": b"\x00" + S0 + S_ACK + frame(HEADERS, EH, 1, resp) + frame(DATA, ES, 1, b"ok"),
    "head": b"\x01" + S0 + S_ACK + frame(HEADERS, ES | EH, 1, resp),
    "post": b"\x02" + S0 + S_ACK + frame(WINDOW, 0, 0, struct.pack(">I", 1000))
    + frame(HEADERS, ES | EH, 1, block((":status", "204"))),
    "trailers": b"\x03" + S0 + S_ACK + frame(HEADERS, EH, 1, block((":status", "200")))
    + frame(DATA, 0, 1, b"ab") + frame(HEADERS, ES | EH, 1, block(("grpc-status", "0"))),
    "continue": b"\x02" + S0 + frame(HEADERS, EH, 1, block((":status", "100")))
    + frame(HEADERS, EH, 1, resp) + frame(DATA, ES, 1, b"ok"),
    "rst": b"\x00" + S0 + frame(RST, 0, 1, struct.pack(">I", 7)),
    "goaway": b"\x00" + S0 + frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)),
    "push": b"\x00" + S0 + frame(PUSH, EH, 1, struct.pack(">I", 2) + req(path="/p")),
    "no-status": b"\x00" + S0 + frame(HEADERS, ES | EH, 1, block(("x", "1"))),
    "bad-upper": b"\x00" + S0 + frame(HEADERS, ES | EH, 1, block((":status", "200"), ("X-Up", "1"))),
    "ping-window": b"\x03" + S0 + frame(PING, 0, 0, b"abcdefgh") + frame(WINDOW, 0, 1, struct.pack(">I", 10))
    + frame(HEADERS, EH, 1, resp) + frame(DATA, 0, 1, b"o") + frame(DATA, ES, 1, b"k"),
    "small-frames": b"\x00" + settings((5, 16384), (4, 10)) + frame(HEADERS, EH, 1, resp)
    + frame(DATA, ES | PADDED, 1, b"\x03ok\x00\x00\x00"),
    # RFC 8441 upstream (two parts: SETTINGS_ENABLE_CONNECT_PROTOCOL (8) and the GET's
    # answer, then, once meshd sent the CONNECT, its answer): open, bytes, a half-close; a
    # 200 with END_STREAM; a reset after the end; a refusal; a small window that holds the
    # client's bytes back; an endpoint without RFC 8441 (the Upgrade takes HTTP/1.1)
    "ws-open": ws(settings((8, 1)) + S_ACK + OK1, frame(HEADERS, EH, 3, block((":status", "200")))
                  + frame(DATA, 0, 3, b"\x81\x02hi") + frame(DATA, ES, 3, b"")),
    "ws-200-end": ws(settings((8, 1)) + OK1, frame(HEADERS, ES | EH, 3, block((":status", "200")))),
    "ws-rst-after-end": ws(settings((8, 1)) + OK1, frame(HEADERS, EH, 3, block((":status", "200")))
                           + frame(DATA, ES, 3, b"x") + frame(RST, 0, 3, struct.pack(">I", 8))),
    "ws-refused": ws(settings((8, 1)) + OK1, frame(HEADERS, ES | EH, 3, block((":status", "403")))),
    "ws-small-window": ws(settings((8, 1), (4, 3)) + OK1, frame(HEADERS, EH, 3, block((":status", "200")))
                          + frame(DATA, ES, 3, b"bye") + frame(WINDOW, 0, 3, struct.pack(">I", 100))),
    "ws-no-rfc8441": ws(settings((8, 0)) + OK1, b""),
}

here = os.path.dirname(os.path.abspath(__file__))
for name, seeds in (("h2", down), ("h2_up", up)):
    d = os.path.join(here, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for k, v in seeds.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(v)
    print(f"{d}: {len(seeds)} seeds")
