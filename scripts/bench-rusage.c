// `bench-rusage -o FILE COMMAND [ARG]...`: runs COMMAND and writes to FILE its wall time, user and
// system CPU seconds, to the microsecond, and peak RSS in KiB ("%e %U %S %M" of GNU time, which
// prints CPU to the hundredth of a second only: too coarse for a small call). Its exit status is
// COMMAND's. Compiled by scripts/bench.mjs at bench time; a small C program, so that its own
// memory (which the child inherits until exec) stays below any peak RSS it measures.
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 4 || strcmp(argv[1], "-o") != 0) {
    fprintf(stderr, "usage: bench-rusage -o FILE COMMAND [ARG]...\n");
    return 2;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) return perror("fork"), 2;
  if (pid == 0) {
    execvp(argv[3], argv + 3);
    perror(argv[3]);
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) return perror("wait4"), 2;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  FILE *out = fopen(argv[2], "w");
  if (!out) return perror(argv[2]), 2;
  fprintf(out, "%.6f %ld.%06ld %ld.%06ld %ld\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
          (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, ru.ru_maxrss);
  fclose(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
