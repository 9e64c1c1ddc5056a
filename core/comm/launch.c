/* Starting the ranks of a local (or hostfile) job: mpirun with posix_spawnp, its
 * arguments as a vector (no shell parses anything), then waiting for it. */
#include "comm.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

lfl_status lfl_comm_launch(char *const *argv, int nproc, int threads_each, const char *hostfile, int *exit_code)
{
    if (nproc < 1) return lfl_fail(LFL_ERR_ARG, "--nproc must be >= 1, got %d", nproc);
    int argc = 0;
    while (argv[argc]) argc++;
    char **av = calloc((size_t)argc + 16, sizeof *av);
    if (!av) return lfl_fail(LFL_ERR_MEM, "launch: out of memory");
    char nbuf[32], tbuf[32];
    snprintf(nbuf, sizeof nbuf, "%d", nproc);
    int k = 0;
    av[k++] = "mpirun";
    av[k++] = "-n";
    av[k++] = nbuf;
    if (hostfile) {
        av[k++] = "--hostfile";
        av[k++] = (char *)hostfile;
    } else {
        /* Open MPI counts a slot per physical core; more ranks than that are refused without this */
        av[k++] = "--oversubscribe";
    }
    /* the ranks size their own OpenMP pools (OMP_NUM_THREADS); binding a rank to one core would serialise them */
    av[k++] = "--bind-to";
    av[k++] = "none";
    if (threads_each > 0 && !getenv("OMP_NUM_THREADS")) {
        snprintf(tbuf, sizeof tbuf, "%d", threads_each);
        setenv("OMP_NUM_THREADS", tbuf, 1);
    }
    if (getenv("OMP_NUM_THREADS")) {
        av[k++] = "-x";
        av[k++] = "OMP_NUM_THREADS";
    }
    if (getenv("OMP_WAIT_POLICY")) {
        av[k++] = "-x";
        av[k++] = "OMP_WAIT_POLICY";
    }
    for (int i = 0; i < argc; i++) av[k++] = argv[i];
    av[k] = NULL;
    /* Open MPI refuses to start as root unless told twice */
    if (geteuid() == 0) {
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, "mpirun", NULL, NULL, av, environ);
    free(av);
    if (rc != 0) {
        return lfl_fail(LFL_ERR_UNSUPPORTED, "--nproc %d: cannot start mpirun: %s (install Open MPI: apt-get install "
                        "openmpi-bin libopenmpi-dev)", nproc, strerror(rc));
    }
    /* Ctrl-C reaches mpirun too (same process group); mpirun ends its ranks and returns */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int;
    sigaction(SIGINT, &ign, &old_int);
    int status = 0;
    pid_t w;
    do { w = waitpid(pid, &status, 0); } while (w < 0 && errno == EINTR);
    sigaction(SIGINT, &old_int, NULL);
    if (w < 0) return lfl_fail(LFL_ERR_IO, "launch: waiting for mpirun: %s", strerror(errno));
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return LFL_OK;
}
