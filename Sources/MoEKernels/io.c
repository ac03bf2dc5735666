// Uncached file reads for the expert store: open a second descriptor that bypasses the page
// cache where the OS allows, and drop cached pages of ranges read through a normal descriptor.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "MoEKernels.h"
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

int moek_open_uncached(const char *path) {
#if defined(__linux__) && defined(O_DIRECT)
    return open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
#elif defined(__APPLE__)
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fcntl(fd, F_NOCACHE, 1) == -1) { close(fd); return -1; }
    return fd;
#else
    (void)path;
    return -1;
#endif
}

int moek_uncached_needs_alignment(void) {
#if defined(__linux__) && defined(O_DIRECT)
    return 1;
#else
    return 0;
#endif
}

void moek_drop_cached_range(int fd, int64_t offset, int64_t length) {
#if defined(POSIX_FADV_DONTNEED)
    (void)posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_DONTNEED);
#else
    (void)fd; (void)offset; (void)length;
#endif
}

uint64_t moek_monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}
