#!/usr/bin/env bash
# WebSocket through meshd against a real implementation (Debian's python3-websockets),
# which checks the handshake as a server in production would: over HTTP/1.1 (its own
# client, Upgrade passed through), over HTTP/2 (RFC 8441 extended CONNECT, turned into
# an HTTP/1.1 Upgrade with a Sec-WebSocket-Key meshd makes up; mesh-test-h2raw as client),
# and through two meshd with an HTTP/2 hop between them (an extended CONNECT upstream).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

# Debian's package goes to the system interpreter; a python3 first in PATH may not see it.
PY=
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import websockets' 2>/dev/null; then
        PY=$p
        break
    fi
done
[ -n "$PY" ] || bail_out "python3 with the websockets module (apt-get install python3-websockets)"

# The server: echoes every message, and answers "key?" with the Sec-WebSocket-Key it got.
cat >"$T_DIR/ws_server.py" <<'EOF'
import asyncio, sys
import websockets

async def echo(ws, path=None):
    async for msg in ws:
        if msg == "key?":
            await ws.send("key=" + ws.request_headers.get("Sec-WebSocket-Key", ""))
        else:
            await ws.send(msg)

async def main():
    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(float(sys.argv[1]))

asyncio.run(main())
EOF
"$PY" "$T_DIR/ws_server.py" 60 >"$T_DIR/ws.port" 2>"$T_DIR/ws.err" &
WS_PID=$!
track "$WS_PID" other "python3 websockets server" "$T_DIR/ws.err"
wait_for 10 test -s "$T_DIR/ws.port" || bail_out "the websockets server starts" "$(cat "$T_DIR/ws.err")"
WS=$(cat "$T_DIR/ws.port")

write_snapshot "$T_DIR/snap.json" --endpoint "127.0.0.1:$WS"
start_meshd "$T_DIR/snap.json" --access-log || bail_out "meshd starts"

# ---- HTTP/1.1: the library's own client ----------------------------------------------------
cat >"$T_DIR/ws_client.py" <<'EOF'
import asyncio, sys
import websockets

async def main():
    async with websockets.connect(sys.argv[1], open_timeout=5, close_timeout=2) as ws:
        for m in sys.argv[2:]:
            if m.startswith("@"):  # "@N": a message of N bytes, its echo's length printed
                await ws.send("x" * int(m[1:]))
                print(len(await asyncio.wait_for(ws.recv(), 5)))
                continue
            await ws.send(m)
            print(await asyncio.wait_for(ws.recv(), 5))

asyncio.run(main())
EOF
out=$(timeout 20 "$PY" "$T_DIR/ws_client.py" "ws://127.0.0.1:$MESH_PORT/chat" hello 'second message' 2>&1)
expect_eq "$out" $'hello\nsecond message' \
    "HTTP/1.1: python websockets client and server through meshd: handshake, two echoes"
out=$(timeout 20 "$PY" "$T_DIR/ws_client.py" "ws://127.0.0.1:$MESH_PORT/chat" @500000 2>&1)
expect_eq "$out" 500000 "HTTP/1.1: a 500 kB message and its echo"

# ---- HTTP/2: extended CONNECT --------------------------------------------------------------
# frame TEXT FILE: a masked text frame (RFC 6455 5.2: a client's frames are masked; a zero
# key leaves the payload as it is) in FILE: FIN + text, MASK + length, the key, the payload.
# A file, since the key's NUL bytes do not survive a shell variable.
frame() { printf '\x81%b\x00\x00\x00\x00%s' "\\x$(printf '%02x' $((0x80 + ${#1})))" "$1" >"$2"; }
h2ws() {
    "$H2RAW_BIN" --timeout 10 127.0.0.1 "$MESH_PORT" --method CONNECT -H ':protocol: websocket' \
        -H 'sec-websocket-version: 13' --path /chat --data-after-status "$@" 2>&1
}
frame hello "$T_DIR/hello.frame"
frame 'key?' "$T_DIR/key.frame"
# The client's side stays open (a WebSocket server takes a FIN for the end of everything):
# the run ends once the echo is in.
out=$(h2ws --no-end --until-bytes 7 --data-file "$T_DIR/hello.frame" --out "$T_DIR/h2.out")
expect_match "$out" 'status=200' "HTTP/2: the server's 101 is the stream's 200"
expect_no_match "$out" 'header (sec-websocket-accept|upgrade|connection):' \
    "HTTP/2: no Sec-WebSocket-Accept, Upgrade or Connection in the 200 (RFC 8441 5)"
# the server's frames are not masked: FIN + text, length 5, the payload
expect_eq "$(od -An -tx1 -N7 "$T_DIR/h2.out" | tr -d ' \n')" "8105$(printf hello | od -An -tx1 | tr -d ' \n')" \
    "HTTP/2: the server's echo comes back as DATA, one text frame"

# The key meshd made is one the server took (16 bytes, base64), and a new one each time.
h2ws --no-end --until-bytes 30 --data-file "$T_DIR/key.frame" --out "$T_DIR/k1.out" >/dev/null
h2ws --no-end --until-bytes 30 --data-file "$T_DIR/key.frame" --out "$T_DIR/k2.out" >/dev/null
k1=$(tail -c +3 "$T_DIR/k1.out" | grep -ao 'key=[A-Za-z0-9+/=]*' | head -n 1)
k2=$(tail -c +3 "$T_DIR/k2.out" | grep -ao 'key=[A-Za-z0-9+/=]*' | head -n 1)
expect_match "$k1" '^key=[A-Za-z0-9+/]{22}==$' "HTTP/2: the server got a 16-byte base64 Sec-WebSocket-Key"
expect_ne "$k1" "$k2" "HTTP/2: each stream gets its own key"

# Without the version the server refuses the handshake: its answer passes as it is.
out=$("$H2RAW_BIN" --timeout 10 127.0.0.1 "$MESH_PORT" --method CONNECT -H ':protocol: websocket' \
    --path /chat --no-end 2>&1)
expect_match "$out" 'status=4[0-9][0-9]' "HTTP/2: a handshake the server refuses (no version) gets its 4xx"

# ---- Two hops: a front meshd reaches this one through an http2 cluster -------------------
# As between two sidecars: once the front has the next meshd's SETTINGS (a plain request
# first), a WebSocket crosses the hop as an HTTP/2 extended CONNECT (RFC 8441). The
# library's client checks the Sec-WebSocket-Accept, which the front computes: the server
# answered the inner meshd's key, not the client's.
INNER_PID=$MESHD_PID
INNER_LOG=$MESHD_LOG
INNER=$MESH_PORT
write_snapshot "$T_DIR/front.json" --protocol http2 --endpoint "127.0.0.1:$INNER" --listener front
start_meshd "$T_DIR/front.json" --access-log || bail_out "the front meshd starts"
FRONT=$MESH_PORT
# a plain GET to a WebSocket server: 426 Upgrade Required, over the HTTP/2 hop
expect_eq "$("${CURL[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$FRONT/plain")" 426 \
    "two hops: a plain request crosses the HTTP/2 hop (the server wants an Upgrade: 426)"
out=$(timeout 20 "$PY" "$T_DIR/ws_client.py" "ws://127.0.0.1:$FRONT/chat" hello 'second message' @500000 2>&1)
expect_eq "$out" $'hello\nsecond message\n500000' \
    "two hops: the library's client and server, handshake checked, two echoes, 500 kB each way"
wait_for 5 grep -q 'access "GET /chat HTTP/2" 200 ' "$INNER_LOG"
expect_match "$(grep 'access "GET /chat' "$INNER_LOG" | tail -n 1)" '"GET /chat HTTP/2" 200 ' \
    "  ... the hop was an extended CONNECT: the inner meshd logs an HTTP/2 stream and its 200"
wait_for 5 grep -q 'access "GET /chat HTTP/1.1" 101 ' "$MESHD_LOG"
expect_match "$(grep 'access "GET /chat' "$MESHD_LOG" | tail -n 1)" '"GET /chat HTTP/1.1" 101 - ' \
    "  ... the front logs the client's 101, no flag (both sides closed cleanly)"
frame bye "$T_DIR/bye.frame"
out=$("$H2RAW_BIN" --timeout 10 127.0.0.1 "$FRONT" --method CONNECT -H ':protocol: websocket' \
    -H 'sec-websocket-version: 13' --path /chat --data-after-status --no-end --until-bytes 5 \
    --data-file "$T_DIR/bye.frame" --out "$T_DIR/h2hop.out" 2>&1)
expect_match "$out" 'status=200' "two hops, an HTTP/2 client: the stream's 200"
expect_eq "$(od -An -tx1 -N5 "$T_DIR/h2hop.out" | tr -d ' \n')" "8103$(printf bye | od -An -tx1 | tr -d ' \n')" \
    "  ... the server's echo comes back over both streams"
stop_meshd "$MESHD_PID"

stop_meshd "$INNER_PID"
kill "$WS_PID" 2>/dev/null
