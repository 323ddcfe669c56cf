/*
 * Fuzzes the upstream HTTP/2 path: a client's HTTP/1.1 request goes to an HTTP/2 cluster
 * whose endpoint is a listener of this harness, and the input is the server's side of
 * that connection, frames from the first byte on: its SETTINGS, HEADERS with :status,
 * DATA, trailers, 1xx, RST_STREAM, GOAWAY, PUSH_PROMISE, window updates. meshd relays
 * what it accepts and answers 502 to the rest. The fourth request (upstream_fuzz.h) is a
 * chunked POST with trailers that asks for trailers back; the fifth a GET then a
 * WebSocket Upgrade, which goes as an RFC 8441 extended CONNECT (stream 3) when the
 * input's SETTINGS allow it, so the tunnel's stream is fuzzed too. Seeds:
 * tests/fuzz/corpus/h2_up/.
 */
#include "upstream_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    upstream_fuzz_one2(data, size, "http2",
                       "POST /up HTTP/1.1\r\nHost: f\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n"
                       "\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n",
                       "GET /up HTTP/1.1\r\nHost: f\r\n\r\n"
                       "GET /ws HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                       "\r\nclient bytes");
    return 0;
}
