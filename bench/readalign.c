/* readalign FILE MODE KIB: pread FILE (cached) into one reused KIB-KiB buffer and print the time.
 * MODE 0: malloc'd (glibc puts a large block 16 bytes past a page); 1: mmap'd, page-aligned,
 * MADV_HUGEPAGE; 2: page-aligned, MADV_NOHUGEPAGE; 3: page-aligned + 16 bytes; 4: + 64 bytes.
 * Shows how the kernel's copy into user memory depends on the destination's alignment
 * (bench/RESULTS.md, session 15). Build: gcc -O2 bench/readalign.c -o readalign */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: readalign FILE MODE KIB\n");
        return 2;
    }
    int mode = atoi(argv[2]);
    size_t bs = (size_t)atoi(argv[3]) << 10;
    char *buf;
    if (mode == 0) {
        buf = malloc(bs);
    } else {
        char *m = mmap(0, bs + (4UL << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return 1;
        buf = (char *)(((unsigned long)m + (2UL << 20) - 1) & ~((2UL << 20) - 1));
        madvise(buf, bs, mode == 1 ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
        if (mode == 3) buf += 16;
        if (mode == 4) buf += 64;
    }
    if (!buf) return 1;
    memset(buf, 1, bs);
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return 1;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    off_t off = 0;
    ssize_t n;
    while ((n = pread(fd, buf, bs, off)) > 0) off += n;
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("mode %d, %zu KiB reads, buffer at page offset %lu: %.3f s for %lld bytes\n", mode, bs >> 10,
           (unsigned long)buf % 4096, (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9, (long long)off);
    return 0;
}
