#include "core/common.h"
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"

/* The only process-wide knob: read on every log call, so an atomic. */
static _Atomic int log_level = MESH_LOG_INFO;

static const char *const names[] = {"trace", "debug", "info", "warn", "error", "off"};

int mesh_log_level_parse(const char *s)
{
    for (size_t i = 0; i < MESH_ARRAY_LEN(names); i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    if (strcmp(s, "warning") == 0)
        return MESH_LOG_WARN;
    return -1;
}

const char *mesh_log_level_name(int level)
{
    return level >= 0 && level < (int)MESH_ARRAY_LEN(names) ? names[level] : "?";
}

void mesh_log_set_level(int level)
{
    atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

int mesh_log_get_level(void)
{
    return atomic_load_explicit(&log_level, memory_order_relaxed);
}

bool mesh_log_enabled(int level)
{
    return level >= mesh_log_get_level();
}

void mesh_log(int level, const char *fmt, ...)
{
    if (!mesh_log_enabled(level))
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, mesh_log_level_name(level));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : MESH_MIN((size_t)m, sizeof(line) - (size_t)n - 2));
    line[len++] = '\n';
    /* one write() per line keeps lines whole across worker threads */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
