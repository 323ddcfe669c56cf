/* Retry policy decisions (retry.h): which outcomes a route retries, and how long it waits. */
#include "core/common.h"
#include "core/retry.h"

/* Envoy counts a connection that never answered as a 5xx and as a gateway error. */
#define ANY_FAILURE (MESH_RETRY_5XX | MESH_RETRY_GATEWAY_ERROR | MESH_RETRY_RESET)

bool mesh_retry_on_failure(const struct mesh_retry_policy *rp, enum mesh_try_failure f)
{
    if (!rp || !rp->attempts)
        return false;
    uint32_t on = rp->retry_on;
    switch (f) {
    case MESH_TRY_CONNECT_FAILURE:
        return (on & (ANY_FAILURE | MESH_RETRY_CONNECT_FAILURE)) != 0;
    case MESH_TRY_REFUSED_STREAM:
        return (on & (ANY_FAILURE | MESH_RETRY_REFUSED_STREAM)) != 0;
    case MESH_TRY_RESET:
    case MESH_TRY_TIMEOUT:
        return (on & ANY_FAILURE) != 0;
    }
    return false;
}

bool mesh_retry_on_response(const struct mesh_retry_policy *rp, int status, int grpc_status)
{
    if (!rp || !rp->attempts)
        return false;
    uint32_t on = rp->retry_on;
    if ((on & MESH_RETRY_5XX) && status >= 500 && status <= 599)
        return true;
    if ((on & MESH_RETRY_GATEWAY_ERROR) && status >= 502 && status <= 504)
        return true;
    if ((on & MESH_RETRY_RETRIABLE_4XX) && status == 409)
        return true;
    if (on & MESH_RETRY_STATUS_CODES) {
        for (size_t i = 0; i < rp->n_status_codes; i++)
            if (rp->status_codes[i] == status)
                return true;
    }
    switch (grpc_status) {
    case 1:
        return (on & MESH_RETRY_GRPC_CANCELLED) != 0;
    case 4:
        return (on & MESH_RETRY_GRPC_DEADLINE_EXCEEDED) != 0;
    case 8:
        return (on & MESH_RETRY_GRPC_RESOURCE_EXHAUSTED) != 0;
    case 13:
        return (on & MESH_RETRY_GRPC_INTERNAL) != 0;
    case 14:
        return (on & MESH_RETRY_GRPC_UNAVAILABLE) != 0;
    default:
        return false;
    }
}

int mesh_retry_grpc_status(const char *v, size_t len)
{
    if (len == 0 || len > 2)
        return -1;
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

uint32_t mesh_retry_backoff_ms(const struct mesh_retry_policy *rp, unsigned n, uint64_t r)
{
    uint64_t ceil = rp->backoff_base_ms;
    for (unsigned i = 1; i < n && ceil < rp->backoff_max_ms; i++)
        ceil *= 2;
    if (ceil > rp->backoff_max_ms)
        ceil = rp->backoff_max_ms;
    return (uint32_t)(r % (ceil + 1));
}
