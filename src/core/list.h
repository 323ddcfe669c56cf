/* Intrusive doubly-linked list (header only). */
#ifndef MESH_CORE_LIST_H
#define MESH_CORE_LIST_H

#include "core/common.h"

struct mesh_list {
    struct mesh_list *next, *prev;
};

static inline void mesh_list_init(struct mesh_list *l)
{
    l->next = l->prev = l;
}
static inline bool mesh_list_empty(const struct mesh_list *l)
{
    return l->next == l;
}
static inline void mesh_list_insert_tail(struct mesh_list *head, struct mesh_list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}
static inline void mesh_list_remove(struct mesh_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}
#define mesh_list_entry(ptr, type, member) MESH_CONTAINER_OF(ptr, type, member)
#define mesh_list_foreach_safe(pos, tmp, head)                                                     \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

#endif /* MESH_CORE_LIST_H */
