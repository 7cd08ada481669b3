/* Arm semihosting calls: r0 = operation, r1 = pointer to the argument block, result in r0. */
#include "semihost.h"

#include <string.h>

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE0 = 0x04, SYS_WRITE = 0x05, SYS_READ = 0x06,
       SYS_EXIT = 0x18 };

static int32_t sh_call(int32_t op, const void *arg)
{
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int32_t sh_open(const char *path, int32_t mode)
{
    const uint32_t args[3] = {(uint32_t)path, (uint32_t)mode, (uint32_t)strlen(path)};
    return sh_call(SYS_OPEN, args);
}

int32_t sh_close(int32_t handle)
{
    const uint32_t args[1] = {(uint32_t)handle};
    return sh_call(SYS_CLOSE, args);
}

int32_t sh_read(int32_t handle, void *buf, uint32_t len)
{
    const uint32_t args[3] = {(uint32_t)handle, (uint32_t)buf, len};
    return sh_call(SYS_READ, args);
}

int32_t sh_write(int32_t handle, const void *buf, uint32_t len)
{
    const uint32_t args[3] = {(uint32_t)handle, (uint32_t)buf, len};
    return sh_call(SYS_WRITE, args);
}

void sh_write0(const char *text)
{
    sh_call(SYS_WRITE0, text);
}

void sh_exit(int32_t code)
{
    /* ADP_Stopped_ApplicationExit (0x20026) makes QEMU exit 0; RunTimeErrorUnknown (0x20023) exit 1. */
    sh_call(SYS_EXIT, (const void *)(code == 0 ? 0x20026u : 0x20023u));
    for (;;) {
    }
}
