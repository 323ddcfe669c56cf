/*
 * Fuzzes the upstream HTTP/1.1 response path: a client's request goes through a real
 * connection of a hand-made worker to a real upstream socket (a listener of this
 * harness), which answers with the input: status line and headers, bodies by length,
 * chunked (with trailers) or to EOF, 1xx, 101 and garbage. meshd relays what it
 * accepts and answers 502 to the rest. The fourth request (upstream_fuzz.h) is an
 * Upgrade, so that tunnels are covered too.
 */
#include "upstream_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    upstream_fuzz_one(data, size, "http1",
                      "GET /up HTTP/1.1\r\nHost: f\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    return 0;
}
