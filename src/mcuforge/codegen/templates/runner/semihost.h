/* Arm semihosting (BKPT 0xAB on M-profile): file I/O and exit through the debugger or QEMU.
 * Only used by the Cortex-M runner; the model itself never calls it. */
#ifndef MF_SEMIHOST_H
#define MF_SEMIHOST_H

#include <stdint.h>

int32_t sh_open(const char *path, int32_t mode);   /* mode 1 = "rb", 5 = "wb"; returns -1 on error */
int32_t sh_close(int32_t handle);
int32_t sh_read(int32_t handle, void *buf, uint32_t len);        /* returns bytes NOT read */
int32_t sh_write(int32_t handle, const void *buf, uint32_t len); /* returns bytes NOT written */
void sh_write0(const char *text);
void sh_exit(int32_t code) __attribute__((noreturn));

#endif
