/* Leveled logging to stderr. The level is process-wide and changed at runtime by /logging. */
#ifndef MESH_CORE_LOG_H
#define MESH_CORE_LOG_H

#include "core/common.h"

enum mesh_log_level {
    MESH_LOG_TRACE = 0,
    MESH_LOG_DEBUG,
    MESH_LOG_INFO,
    MESH_LOG_WARN,
    MESH_LOG_ERROR,
    MESH_LOG_OFF,
};

/** Parses "trace|debug|info|warn|error|off"; returns -1 when unknown. */
int mesh_log_level_parse(const char *s);
const char *mesh_log_level_name(int level);
void mesh_log_set_level(int level);
int mesh_log_get_level(void);
bool mesh_log_enabled(int level);
void mesh_log(int level, const char *fmt, ...) MESH_PRINTF(2, 3);

#define mesh_log_debug(...) do { if (mesh_log_enabled(MESH_LOG_DEBUG)) mesh_log(MESH_LOG_DEBUG, __VA_ARGS__); } while (0)
#define mesh_log_info(...) mesh_log(MESH_LOG_INFO, __VA_ARGS__)
#define mesh_log_warn(...) mesh_log(MESH_LOG_WARN, __VA_ARGS__)
#define mesh_log_error(...) mesh_log(MESH_LOG_ERROR, __VA_ARGS__)

#endif /* MESH_CORE_LOG_H */
