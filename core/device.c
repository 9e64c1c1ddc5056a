/* Device names shared by every build: the device kinds of the dispatch table
 * and "cpu" / "cuda:N" for messages. */
#include <stdio.h>
#include "device.h"

const char *lfl_devkind_name(int kind)
{
    switch (kind) {
    case LFL_DEVKIND_CPU: return "cpu";
    case LFL_DEVKIND_CUDA: return "cuda";
    default: return NULL;
    }
}

const char *lfl_device_str(int device, char *buf, size_t n)
{
    if (lfl_device_kind(device) == LFL_DEVKIND_CPU) snprintf(buf, n, "cpu");
    else snprintf(buf, n, "cuda:%d", device);
    return buf;
}
