/* core/comm/comm_nccl.c's choice of CUDA device per rank (lfl_comm_device_pick):
 * local rank when the machine shows a device per local rank, device 0 when each
 * process sees one of its own, an error naming the ranks and devices otherwise;
 * and the device communicator's refusal where there is no device. */
#include <stdio.h>
#include <string.h>
#include "comm/comm.h"
#include "device.h"

static int passed, failed;

static void check(const char *what, int ok)
{
    if (ok) passed++;
    else { failed++; printf("FAIL  %s\n", what); }
}

static void pick(const char *what, int count, int rank, int local_rank, int local_size, int want)
{
    int dev = -7;
    lfl_status st = lfl_comm_device_pick(count, rank, local_rank, local_size, &dev);
    if (st || dev != want) {
        failed++;
        printf("FAIL  %s: got %s%d, want cuda:%d\n", what, st ? lfl_last_error() : "cuda:", st ? 0 : dev, want);
    } else {
        passed++;
    }
}

static void refuse(const char *what, int count, int rank, int local_rank, int local_size, const char *msg)
{
    int dev = -7;
    lfl_status st = lfl_comm_device_pick(count, rank, local_rank, local_size, &dev);
    check(what, st != LFL_OK && strstr(lfl_last_error(), msg) && dev == -7);
    if (st == LFL_OK || !strstr(lfl_last_error(), msg)) printf("      got: %s\n", st ? lfl_last_error() : "ok");
}

int main(void)
{
    pick("one process, one device", 1, 0, 0, 1, 0);
    pick("8 GPUs, 8 ranks: local rank 5", 8, 13, 5, 8, 5);
    pick("8 GPUs, 4 ranks: local rank 3", 8, 3, 3, 4, 3);
    pick("one visible device per process (CUDA_VISIBLE_DEVICES per rank, the emulator)", 1, 3, 3, 4, 0);
    refuse("2 GPUs shared by 4 ranks", 2, 6, 3, 4,
           "comm: 4 ranks on this machine but 2 CUDA devices: rank 6 (local rank 3) has none of its own");
    refuse("no device", 0, 1, 1, 2, "comm: rank 1 has no CUDA device");
    /* the world here is one process: without a device the device communicator is refused by name */
    if (lfl_device_count() == 0) {
        lfl_comm *c = NULL;
        lfl_status st = lfl_comm_device(&c);
        check("no device: lfl_comm_device fails", st != LFL_OK && c == NULL &&
              strstr(lfl_last_error(), "has no CUDA device"));
    } else {
        lfl_comm *c = NULL;
        lfl_status st = lfl_comm_device(&c);
        check("one process with a device: the local device communicator", st == LFL_OK && c && c->size == 1 &&
              c->device == 0 && !strcmp(c->be->name, "local") && lfl_comm_device_current() == c);
    }
    lfl_comm_shutdown();
    check("shutdown closes the device communicator", lfl_comm_device_current() == NULL);
    bool ok = false;
    const char *why = lfl_comm_nccl_describe(&ok);
    check("nccl_describe says something", why && *why);
    printf("test_comm_device: %d passed, %d failed (NCCL: %s)\n", passed, failed, why);
    return failed ? 1 : 0;
}
