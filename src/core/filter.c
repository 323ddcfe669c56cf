/*
 * The filter chain runner (filter.h): the route's filters, then the chosen
 * destination's, in order. A filter that pauses (a fault delay) picks up
 * where it stopped through mesh_filter_resume(); s->filter_next says where.
 */
#include "core/common.h"
#include <string.h>
#include "core/filter.h"
#include "core/filters/filters-int.h"
#include "core/proxy-int.h"

/* Built-in filter types, by the snapshot field that configures them. */
static const struct mesh_filter_type *const builtin[] = {
    &mesh_filter_cors,
    &mesh_filter_fault,
    &mesh_filter_redirect,
    &mesh_filter_rewrite,
    &mesh_filter_request_headers,
    &mesh_filter_response_headers,
    NULL,
};

const struct mesh_filter_type *mesh_filter_find(const char *name)
{
    for (size_t i = 0; builtin[i]; i++)
        if (strcmp(builtin[i]->name, name) == 0)
            return builtin[i];
    return NULL;
}

/* The <i>th filter of the stream's chain (route's, then destination's), or NULL past the end. */
static const struct mesh_filter *chain_at(const struct mesh_stream *s, unsigned i)
{
    const struct mesh_route_policy *p = s->route ? s->route->policy : NULL;
    size_t nr = p ? p->n_filters : 0;
    if (i < nr)
        return &p->filters[i];
    i -= (unsigned)nr;
    if (s->dest && i < s->dest->n_filters)
        return &s->dest->filters[i];
    return NULL;
}

enum mesh_filter_status mesh_filter_request(struct mesh_stream *s)
{
    const struct mesh_filter *f;
    while ((f = chain_at(s, s->filter_next)) != NULL) {
        s->filter_next++;
        if (!f->type->on_request)
            continue;
        enum mesh_filter_status st = f->type->on_request(s, f->cfg);
        if (st != MESH_FILTER_CONTINUE)
            return st;
    }
    return MESH_FILTER_CONTINUE;
}

void mesh_filter_resume(struct mesh_stream *s)
{
    if (mesh_filter_request(s) == MESH_FILTER_CONTINUE)
        mesh_proxy_continue(s);
}

void mesh_filter_response(struct mesh_stream *s)
{
    const struct mesh_filter *f;
    for (unsigned i = 0; (f = chain_at(s, i)) != NULL; i++)
        if (f->type->on_response)
            f->type->on_response(s, f->cfg);
}
