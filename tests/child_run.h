/* Running the test program again as a child, for cases that need a fresh process (a cold
 * program cache, what happens at exit): the child sees XDG_CACHE_HOME=dir, mode_var=mode
 * and TG_CL_CACHE unset (cache) or "0"; its stdout is returned in out. */
#ifndef TG_TEST_CHILD_RUN_H
#define TG_TEST_CHILD_RUN_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child's exit status, or -1 when it could not start or died of a signal (said). */
static inline int tg_test_run_child(const char *mode_var, const char *mode, const char *dir, bool cache, char *out,
                                    size_t size) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        setenv("XDG_CACHE_HOME", dir, 1);
        setenv(mode_var, mode, 1);
        if (cache) unsetenv("TG_CL_CACHE");
        else setenv("TG_CL_CACHE", "0", 1);
        execl("/proc/self/exe", "child", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t n;
    while (got < size - 1 && (n = read(fd[0], out + got, size - 1 - got)) > 0) got += (size_t)n;
    out[got] = '\0';
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) fprintf(stderr, "  child (%s) died of signal %d\n", mode, WTERMSIG(status));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#endif
