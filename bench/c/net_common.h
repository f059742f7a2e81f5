/* Shared helpers for the raw-limit probes: loopback TCP sockets with TCP_NODELAY and exact I/O loops.
 * Header-only so each probe stays a single gcc invocation. */
#ifndef BENCH_NET_COMMON_H
#define BENCH_NET_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline void net_die(const char *what) {
    fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
    exit(2);
}

static inline void net_nodelay(int fd) {
    int one = 1;
    /* Small frames must leave at once; Nagle would add delayed-ACK stalls to every ping-pong. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) net_die("TCP_NODELAY");
}

/* Listens on 127.0.0.1 with a kernel-chosen port; returns the fd and writes the port. */
static inline int net_listen(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) net_die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) net_die("bind");
    if (listen(fd, 4) < 0) net_die("listen");
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0) net_die("getsockname");
    *port = ntohs(a.sin_port);
    return fd;
}

static inline int net_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) net_die("socket");
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) net_die("connect");
    net_nodelay(fd);
    return fd;
}

/* Returns 0 on success, -1 on EOF before n bytes. */
static inline int net_read_full(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) net_die("read");
        if (r == 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static inline void net_write_full(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) net_die("write");
        p += w;
        n -= (size_t)w;
    }
}

static inline double net_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

#endif
