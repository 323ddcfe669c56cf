#include "core/common.h"
#include <limits.h>
#include <string.h>
#include "core/diff.h"

/*
 * Myers, "An O(ND) Difference Algorithm and Its Variations" (1986), section 4b: find the
 * middle snake of the shortest edit script from both ends at once, then recurse on the two
 * halves, so memory stays linear in the input. The split follows the shape of libxdiff's
 * xdl_split() (used by git), without its speed heuristics: the result is always minimal.
 */

struct line {
    const char *p;
    size_t len;    /* without the '\n' */
    uint64_t hash; /* FNV-1a of the bytes and the newline flag */
    bool nl;       /* ended by '\n' */
};

struct diff {
    const struct line *a, *b;
    long *kvdf, *kvdb; /* furthest x per diagonal (x - y), forward and backward */
    char *chg_a, *chg_b;
};

static size_t split_lines(const char *s, size_t n, struct line **out)
{
    size_t count = 0, cap = 16;
    struct line *v = mesh_xmalloc(cap * sizeof(*v));
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (s + i)) : n - i;
        if (count == cap) {
            cap *= 2;
            v = mesh_xrealloc(v, cap * sizeof(*v));
        }
        uint64_t h = 1469598103934665603ull;
        for (size_t k = 0; k < len; k++)
            h = (h ^ (unsigned char)s[i + k]) * 1099511628211ull;
        bool has_nl = nl != NULL;
        v[count] = (struct line){.p = s + i, .len = len, .hash = h ^ has_nl, .nl = has_nl};
        count++;
        i += len + (nl ? 1 : 0);
    }
    *out = v;
    return count;
}

static bool line_eq(const struct diff *d, long i, long j)
{
    const struct line *x = &d->a[i], *y = &d->b[j];
    return x->hash == y->hash && x->len == y->len && x->nl == y->nl &&
           memcmp(x->p, y->p, x->len) == 0;
}

/* A point (*x, *y) on a shortest edit path through the box [off1,lim1) x [off2,lim2). */
static void split(struct diff *df, long off1, long lim1, long off2, long lim2, long *x, long *y)
{
    long *kvdf = df->kvdf, *kvdb = df->kvdb;
    long dmin = off1 - lim2, dmax = lim1 - off2;
    long fmid = off1 - off2, bmid = lim1 - lim2;
    bool odd = ((fmid - bmid) & 1) != 0;
    long fmin = fmid, fmax = fmid, bmin = bmid, bmax = bmid;

    kvdf[fmid] = off1;
    kvdb[bmid] = lim1;
    for (;;) {
        /* widen the band of diagonals by one each side, bouncing off the box */
        if (fmin > dmin)
            kvdf[--fmin - 1] = -1;
        else
            ++fmin;
        if (fmax < dmax)
            kvdf[++fmax + 1] = -1;
        else
            --fmax;
        for (long d = fmax; d >= fmin; d -= 2) {
            long i1 = kvdf[d - 1] >= kvdf[d + 1] ? kvdf[d - 1] + 1 : kvdf[d + 1];
            long i2 = i1 - d;
            while (i1 < lim1 && i2 < lim2 && line_eq(df, i1, i2))
                i1++, i2++;
            kvdf[d] = i1;
            if (odd && bmin <= d && d <= bmax && kvdb[d] <= i1) {
                *x = i1;
                *y = i2;
                return;
            }
        }
        if (bmin > dmin)
            kvdb[--bmin - 1] = LONG_MAX;
        else
            ++bmin;
        if (bmax < dmax)
            kvdb[++bmax + 1] = LONG_MAX;
        else
            --bmax;
        for (long d = bmax; d >= bmin; d -= 2) {
            long i1 = kvdb[d - 1] < kvdb[d + 1] ? kvdb[d - 1] : kvdb[d + 1] - 1;
            long i2 = i1 - d;
            while (i1 > off1 && i2 > off2 && line_eq(df, i1 - 1, i2 - 1))
                i1--, i2--;
            kvdb[d] = i1;
            if (!odd && fmin <= d && d <= fmax && i1 <= kvdf[d]) {
                *x = i1;
                *y = i2;
                return;
            }
        }
    }
}

static void compare(struct diff *df, long off1, long lim1, long off2, long lim2)
{
    while (off1 < lim1 && off2 < lim2 && line_eq(df, off1, off2))
        off1++, off2++;
    while (off1 < lim1 && off2 < lim2 && line_eq(df, lim1 - 1, lim2 - 1))
        lim1--, lim2--;
    if (off1 == lim1) {
        memset(df->chg_b + off2, 1, (size_t)(lim2 - off2));
    } else if (off2 == lim2) {
        memset(df->chg_a + off1, 1, (size_t)(lim1 - off1));
    } else {
        /* both sides non-empty and differing at both ends: the split is strictly inside */
        long x, y;
        split(df, off1, lim1, off2, lim2, &x, &y);
        compare(df, off1, x, off2, y);
        compare(df, x, lim1, y, lim2);
    }
}

static void print_line(FILE *out, char tag, const struct line *l)
{
    fputc(tag, out);
    fwrite(l->p, 1, l->len, out);
    fputc('\n', out);
    if (!l->nl)
        fputs("\\ No newline at end of file\n", out);
}

static void print_range(FILE *out, long start, long count)
{
    if (count == 1)
        fprintf(out, "%ld", start + 1);
    else /* an empty range names the line before it, as diff -u does */
        fprintf(out, "%ld,%ld", count ? start + 1 : start, count);
}

struct change {
    long i0, i1, j0, j1; /* a[i0,i1) replaced by b[j0,j1) */
};

static size_t collect_changes(const struct diff *df, long na, long nb, struct change **out)
{
    size_t n = 0, cap = 8;
    struct change *v = mesh_xmalloc(cap * sizeof(*v));
    long i = 0, j = 0;
    while (i < na || j < nb) {
        if ((i < na && df->chg_a[i]) || (j < nb && df->chg_b[j])) {
            struct change c = {.i0 = i, .j0 = j};
            while (i < na && df->chg_a[i])
                i++;
            while (j < nb && df->chg_b[j])
                j++;
            c.i1 = i;
            c.j1 = j;
            if (n == cap) {
                cap *= 2;
                v = mesh_xrealloc(v, cap * sizeof(*v));
            }
            v[n++] = c;
        } else {
            i++, j++;
        }
    }
    *out = v;
    return n;
}

bool mesh_diff_unified(FILE *out, const char *a, size_t alen, const char *b, size_t blen,
                       const char *label_a, const char *label_b, int context)
{
    struct line *la, *lb;
    long na = (long)split_lines(a, alen, &la);
    long nb = (long)split_lines(b, blen, &lb);
    struct diff df = {.a = la, .b = lb};
    size_t ndiags = (size_t)(na + nb + 3);
    long *kvd = mesh_xmalloc(2 * ndiags * sizeof(*kvd));
    df.kvdf = kvd + nb + 1;
    df.kvdb = kvd + ndiags + nb + 1;
    df.chg_a = mesh_xcalloc((size_t)na + 1, 1);
    df.chg_b = mesh_xcalloc((size_t)nb + 1, 1);
    compare(&df, 0, na, 0, nb);

    struct change *ch;
    size_t nch = collect_changes(&df, na, nb, &ch);
    if (context < 0)
        context = 0;
    if (nch > 0)
        fprintf(out, "--- %s\n+++ %s\n", label_a, label_b);
    for (size_t k = 0; k < nch;) {
        /* a hunk: changes whose gaps are at most 2*context common lines */
        size_t last = k;
        while (last + 1 < nch && ch[last + 1].i0 - ch[last].i1 <= 2L * context)
            last++;
        long ha0 = MESH_MAX(0L, ch[k].i0 - context);
        long hb0 = ch[k].j0 - (ch[k].i0 - ha0);
        long ha1 = MESH_MIN(na, ch[last].i1 + context);
        long hb1 = ch[last].j1 + (ha1 - ch[last].i1);
        fputs("@@ -", out);
        print_range(out, ha0, ha1 - ha0);
        fputs(" +", out);
        print_range(out, hb0, hb1 - hb0);
        fputs(" @@\n", out);
        long i = ha0;
        for (size_t c = k; c <= last; c++) {
            for (; i < ch[c].i0; i++)
                print_line(out, ' ', &la[i]);
            for (; i < ch[c].i1; i++)
                print_line(out, '-', &la[i]);
            for (long j = ch[c].j0; j < ch[c].j1; j++)
                print_line(out, '+', &lb[j]);
        }
        for (; i < ha1; i++)
            print_line(out, ' ', &la[i]);
        k = last + 1;
    }
    free(ch);
    free(df.chg_a);
    free(df.chg_b);
    free(kvd);
    free(la);
    free(lb);
    return nch > 0;
}
