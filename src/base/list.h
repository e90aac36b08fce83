/* An intrusive doubly linked list: the node lives inside the listed
 * struct, so linking and unlinking never allocate and never fail.
 *
 * The list is circular around its head, a node of its own that belongs
 * to no element: an empty list is a head pointing at itself, so insert and
 * remove have no special case for the ends. An element's node is either
 * linked or zeroed (a struct made with calloc or `= {0}` is unlinked, and
 * mproc__list_remove zeroes the node again), which is what
 * mproc__list_linked tells.
 *
 *     typedef struct job { int id; mproc__list node; } job;
 *     mproc__list jobs = MPROC__LIST_INIT(jobs);      (or mproc__list_init)
 *     mproc__list_insert_tail(&jobs, &j->node);
 *     MPROC__LIST_FOREACH(n, &jobs) use(MPROC__CONTAINER_OF(n, job, node));
 *     job *first = MPROC__LIST_FIRST(&jobs, job, node);  (NULL: empty)
 *
 * Not thread-safe: the owner of the list locks around it. Not for lists
 * in shared memory (the pointers are this process's). */
#ifndef MPROC_INTERNAL_LIST_H
#define MPROC_INTERNAL_LIST_H

#include "base/base.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct mproc__list {
    struct mproc__list *next, *prev;
} mproc__list;

/* The struct of the given type whose member `field` is at ptr. */
#define MPROC__CONTAINER_OF(ptr, type, field)                                                      \
    ((type *)(void *)((char *)(ptr)-offsetof(type, field)))

/* A static initialiser for the head `name`: the empty list. */
#define MPROC__LIST_INIT(name)                                                                     \
    {                                                                                              \
        &(name), &(name)                                                                           \
    }

static inline void mproc__list_init(mproc__list *head)
{
    head->next = head->prev = head;
}

static inline bool mproc__list_empty(const mproc__list *head)
{
    return head->next == head;
}

/* Whether an element's node is in a list (see the top: zeroed is not). */
static inline bool mproc__list_linked(const mproc__list *node)
{
    return node->next != NULL;
}

/* gcc's analyzer does not follow a circular list through its head: it
 * takes a linked node's neighbours for NULL (a node is zeroed when
 * unlinked). They never are, so its warning is off for the linking. */
MPROC__ANALYZER_OFF("-Wanalyzer-null-dereference")

/* Links node in after `at` (a head or a linked node). */
static inline void mproc__list_insert_after(mproc__list *at, mproc__list *node)
{
    node->prev = at;
    node->next = at->next;
    at->next->prev = node;
    at->next = node;
}

static inline void mproc__list_insert_head(mproc__list *head, mproc__list *node)
{
    mproc__list_insert_after(head, node);
}

static inline void mproc__list_insert_tail(mproc__list *head, mproc__list *node)
{
    mproc__list_insert_after(head->prev, node);
}

/* Unlinks a linked node from its list and zeroes it. */
static inline void mproc__list_remove(mproc__list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node->prev = NULL;
}

MPROC__ANALYZER_ON

/* The first, last, next or previous node, or NULL past the ends. */
static inline mproc__list *mproc__list_first(const mproc__list *head)
{
    return head->next == head ? NULL : head->next;
}

static inline mproc__list *mproc__list_last(const mproc__list *head)
{
    return head->prev == head ? NULL : head->prev;
}

static inline mproc__list *mproc__list_next(const mproc__list *head, const mproc__list *node)
{
    return node->next == head ? NULL : node->next;
}

/* Moves every node of `from` to the empty head `to`, in order; `from` is
 * left empty. */
static inline void mproc__list_move(mproc__list *from, mproc__list *to)
{
    if (mproc__list_empty(from)) {
        mproc__list_init(to);
        return;
    }
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    mproc__list_init(from);
}

/* The element holding the first or last node, or NULL if the list is
 * empty. */
#define MPROC__LIST_FIRST(head, type, field) MPROC__LIST_ENTRY(mproc__list_first(head), type, field)
#define MPROC__LIST_LAST(head, type, field)  MPROC__LIST_ENTRY(mproc__list_last(head), type, field)
/* The element holding node, or NULL for a NULL node. */
#define MPROC__LIST_ENTRY(node, type, field)                                                       \
    ((type *)mproc__list_entry_at_((node), offsetof(type, field)))
static inline void *mproc__list_entry_at_(mproc__list *node, size_t off)
{
    return node ? (void *)((char *)node - off) : NULL;
}

/* For each node of the list, front to back. The body must not remove
 * the node (use MPROC__LIST_FOREACH_SAFE). */
#define MPROC__LIST_FOREACH(node, head)                                                            \
    for (mproc__list *node = (head)->next; node != (head); node = node->next)
/* The same, where the body may remove (and free) the node. */
#define MPROC__LIST_FOREACH_SAFE(node, head)                                                       \
    for (mproc__list *node = (head)->next, *node##_next_ = node->next; node != (head);             \
         node = node##_next_, node##_next_ = node->next)

#endif
