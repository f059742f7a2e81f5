/* Raw-limit probe: the far end of a ping-pong. `tcp_echo` echoes every byte back; `tcp_echo PORT` is a
 * relay that forwards both directions to an upstream echo, the C stand-in for the kernel-proxy hop.
 * Prints the listening port on stdout, serves one connection, exits when it closes. */
#include <poll.h>

#include "net_common.h"

static char buf[1 << 20];

/* Forwards one readable chunk from `from` to `to`; returns 0 at EOF. */
static int pump(int from, int to) {
    ssize_t r = read(from, buf, sizeof buf);
    if (r < 0 && errno == EINTR) return 1;
    if (r < 0) net_die("read");
    if (r == 0) return 0;
    net_write_full(to, buf, (size_t)r);
    return 1;
}

int main(int argc, char **argv) {
    int port;
    int lfd = net_listen(&port);
    printf("%d\n", port);
    fflush(stdout);
    int cfd = accept(lfd, NULL, NULL);
    if (cfd < 0) net_die("accept");
    net_nodelay(cfd);
    if (argc < 2) {
        while (pump(cfd, cfd)) {}
        return 0;
    }
    int ufd = net_connect(atoi(argv[1]));
    struct pollfd p[2] = {{cfd, POLLIN, 0}, {ufd, POLLIN, 0}};
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            net_die("poll");
        }
        if ((p[0].revents & (POLLIN | POLLHUP)) && !pump(cfd, ufd)) break;
        if ((p[1].revents & (POLLIN | POLLHUP)) && !pump(ufd, cfd)) break;
    }
    return 0;
}
