/* Reference for the emulator section: `matmul N REPS` computes C = A·B for N×N floats with the plain
 * i-j-k triple loop (what a user would write; gcc -O2, no blocking, no SIMD intrinsics), with the same
 * input pattern as the emulated kernel, and prints the best time per product and a checksum. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 256;
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    float *a = malloc(sizeof(float) * (size_t)n * (size_t)n);
    float *b = malloc(sizeof(float) * (size_t)n * (size_t)n);
    float *c = malloc(sizeof(float) * (size_t)n * (size_t)n);
    if (!a || !b || !c) return 2;
    for (int i = 0; i < n * n; i++) {
        a[i] = (float)(i % 7) * 0.25f;
        b[i] = (float)(i % 5) * 0.5f;
        c[i] = 0.0f;
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                float s = 0.0f;
                for (int k = 0; k < n; k++) s += a[i * n + k] * b[k * n + j];
                c[i * n + j] = s;
            }
        double t = now_ms() - t0;
        if (t < best) best = t;
    }
    double sum = 0;
    for (int i = 0; i < n * n; i++) sum += c[i];
    printf("{\"n\":%d,\"ms\":%.3f,\"checksum\":%.6e}\n", n, best, sum);
    return 0;
}
