/* Minimal Cortex-M startup: vector table, .data copy, .bss and arena zeroing, FPU enable, stack
 * painting (for the stack high-water measurement), then main() and a semihosting exit. */
#include <stdint.h>

#include "semihost.h"

extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __arena_start__, __arena_end__, __StackLimit, __StackTop;
extern int main(void);

#define MF_STACK_PAINT 0xA5A5A5A5u

void Reset_Handler(void) __attribute__((noreturn));
void Fault_Handler(void) __attribute__((noreturn));

__attribute__((section(".isr_vector"), used))
const void *const mf_vector_table[16] = {
    &__StackTop, (const void *)Reset_Handler, (const void *)Fault_Handler,
    (const void *)Fault_Handler, (const void *)Fault_Handler, (const void *)Fault_Handler,
    (const void *)Fault_Handler, 0, 0, 0, 0, (const void *)Fault_Handler,
    (const void *)Fault_Handler, 0, (const void *)Fault_Handler, (const void *)Fault_Handler,
};

void Fault_Handler(void)
{
    sh_write0("mcuforge: fault\n");
    sh_exit(1);
}

/* Words from the stack limit up to `below` that still hold the paint pattern. */
void mf_paint_stack(uint32_t *below)
{
    for (uint32_t *p = &__StackLimit; p < below; p++) {
        *p = MF_STACK_PAINT;
    }
}

uint32_t mf_stack_high_water_bytes(void)
{
    const uint32_t *p = &__StackLimit;
    while (p < &__StackTop && *p == MF_STACK_PAINT) {
        p++;
    }
    return (uint32_t)((const char *)&__StackTop - (const char *)p);
}

void Reset_Handler(void)
{
    uint32_t *src = &__data_load__;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }
    for (uint32_t *dst = &__arena_start__; dst < &__arena_end__;) {
        *dst++ = 0;
    }
#if defined(__ARM_FP)
    /* CPACR: full access to CP10 and CP11 (the FPU). */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    mf_paint_stack(sp - 16);
    sh_exit(main());
}
