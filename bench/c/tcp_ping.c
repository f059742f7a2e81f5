/* Raw-limit probe: `tcp_ping PORT COUNT SIZE` sends SIZE-byte messages to an echo (or relay) on PORT one
 * at a time and prints the round-trip distribution as one JSON line. */
#include "net_common.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: tcp_ping PORT COUNT SIZE\n");
        return 2;
    }
    int fd = net_connect(atoi(argv[1]));
    int count = atoi(argv[2]);
    size_t size = (size_t)atoi(argv[3]);
    char *msg = calloc(1, size);
    double *rtt = malloc(sizeof(double) * (size_t)count);
    if (!msg || !rtt) net_die("malloc");
    /* Warm-up: first round trips pay page faults, slow-start and scheduler placement. */
    int warm = count / 10 + 100;
    for (int i = 0; i < warm; i++) {
        net_write_full(fd, msg, size);
        if (net_read_full(fd, msg, size) < 0) net_die("early EOF");
    }
    for (int i = 0; i < count; i++) {
        double t0 = net_now_us();
        net_write_full(fd, msg, size);
        if (net_read_full(fd, msg, size) < 0) net_die("early EOF");
        rtt[i] = net_now_us() - t0;
    }
    qsort(rtt, (size_t)count, sizeof(double), cmp_double);
    printf("{\"count\":%d,\"size\":%zu,\"p10_us\":%.2f,\"p50_us\":%.2f,\"p99_us\":%.2f}\n", count, size,
           rtt[count / 10], rtt[count / 2], rtt[(count * 99) / 100]);
    close(fd);
    return 0;
}
