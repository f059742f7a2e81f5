/* Tracing to stderr when REMOTE_GPU_TRACE=1. Never stdout: that belongs to the program. */
#include "rgpu.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int trace_state = -1;

int rgpu_trace_on(void)
{
    if (trace_state < 0) {
        const char *v = getenv("REMOTE_GPU_TRACE");
        trace_state = v && v[0] && strcmp(v, "0") != 0;
    }
    return trace_state;
}

void rgpu_trace(const char *fmt, ...)
{
    if (!rgpu_trace_on()) return;
    char line[1024];
    int n = snprintf(line, sizeof(line), "[rgpu %d] ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2) len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}

/* Each unimplemented entry point is logged once; the set is small and lookups are rare, so a fixed
 * table with a linear scan is enough. */
#define SEEN_MAX 256
static const char *seen[SEEN_MAX];
static size_t nseen;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

CUresult rgpu_trace_unimplemented(const char *name)
{
    if (!rgpu_trace_on()) return CUDA_ERROR_NOT_SUPPORTED;
    pthread_mutex_lock(&seen_lock);
    int first = 1;
    for (size_t i = 0; i < nseen; i++)
        if (seen[i] == name || strcmp(seen[i], name) == 0) { first = 0; break; }
    if (first && nseen < SEEN_MAX) seen[nseen++] = name;
    pthread_mutex_unlock(&seen_lock);
    if (first) rgpu_trace("unimplemented: %s -> CUDA_ERROR_NOT_SUPPORTED", name);
    return CUDA_ERROR_NOT_SUPPORTED;
}
