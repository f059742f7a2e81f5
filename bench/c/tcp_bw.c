/* Raw-limit probe: `tcp_bw MIB CHUNK_KIB REPS` streams MIB MiB over TCP loopback from a forked sender to
 * this process in CHUNK_KIB writes, REPS times, and prints MB/s (10^6 B/s) per rep as one JSON line.
 * The clock runs from the first write until the receiver's 1-byte ack, so the figure is delivered bytes. */
#include <sys/wait.h>

#include "net_common.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: tcp_bw MIB CHUNK_KIB REPS\n");
        return 2;
    }
    size_t total = (size_t)atoi(argv[1]) << 20;
    size_t chunk = (size_t)atoi(argv[2]) << 10;
    int reps = atoi(argv[3]);
    int port;
    int lfd = net_listen(&port);
    int pipefd[2];
    if (pipe(pipefd) < 0) net_die("pipe");
    pid_t pid = fork();
    if (pid < 0) net_die("fork");
    if (pid == 0) {
        close(pipefd[0]);
        char *buf = malloc(chunk);
        if (!buf) net_die("malloc");
        memset(buf, 1, chunk); /* first touch outside the timed region */
        int fd = net_connect(port);
        double mbps[64];
        char ack;
        for (int r = 0; r < reps && r < 64; r++) {
            double t0 = net_now_us();
            for (size_t sent = 0; sent < total; sent += chunk) net_write_full(fd, buf, chunk);
            if (net_read_full(fd, &ack, 1) < 0) net_die("no ack");
            mbps[r] = (double)total / (net_now_us() - t0);
        }
        FILE *out = fdopen(pipefd[1], "w");
        fprintf(out, "{\"mib\":%zu,\"chunk_kib\":%zu,\"MBps\":[", total >> 20, chunk >> 10);
        for (int r = 0; r < reps && r < 64; r++) fprintf(out, "%s%.1f", r ? "," : "", mbps[r]);
        fprintf(out, "]}\n");
        fclose(out);
        _exit(0);
    }
    close(pipefd[1]);
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) net_die("accept");
    net_nodelay(fd);
    char *buf = malloc(1 << 20);
    if (!buf) net_die("malloc");
    memset(buf, 0, 1 << 20);
    for (int r = 0; r < reps; r++) {
        size_t got = 0;
        while (got < total) {
            ssize_t n = read(fd, buf, 1 << 20);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) net_die("sender vanished");
            got += (size_t)n;
        }
        net_write_full(fd, "k", 1);
    }
    char line[4096];
    ssize_t n = read(pipefd[0], line, sizeof line - 1);
    if (n <= 0) net_die("no result from sender");
    line[n] = 0;
    fputs(line, stdout);
    waitpid(pid, NULL, 0);
    return 0;
}
