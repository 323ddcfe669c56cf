/*
 * Fuzzes the upstream HTTP/1.1 response path: a client's request goes through a real
 * connection of a hand-made worker to a real upstream socket (a listener of this
 * harness), which answers with the input: status line and headers, bodies by length,
 * chunked (with trailers) or to EOF, 1xx, 101 and garbage. meshd relays what it
 * accepts and answers 502 to the rest; the client side is drained and dropped.
 * The input's first byte picks the request (GET, HEAD, POST with a body, or an
 * Upgrade), so that responses without a body and tunnels are covered too.
 */
#include "upstream_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const requests[4] = {
        "GET /up HTTP/1.1\r\nHost: f\r\n\r\n",
        "HEAD /up HTTP/1.1\r\nHost: f\r\n\r\n",
        "POST /up HTTP/1.1\r\nHost: f\r\nContent-Length: 5\r\n\r\nhello",
        "GET /up HTTP/1.1\r\nHost: f\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    };
    upstream_fuzz_one(data, size, "http1", requests);
    return 0;
}
