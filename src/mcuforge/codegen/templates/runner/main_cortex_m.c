/* Cortex-M runner: reads every input of input.bin (semihosting), runs mcuforge_invoke on each, writes
 * the outputs to output.bin (and, with a post-processing module, prints its result) and prints the
 * inference count and the stack high-water mark. */
#include <stdint.h>

#include "../model.h"
#include "semihost.h"
{% if postprocess_header %}
#include "../{{ postprocess_header }}"
{% endif %}

uint32_t mf_stack_high_water_bytes(void);

static int8_t runner_input[MCUFORGE_INPUT_BYTES] __attribute__((section(".runner_io"), aligned(4)));
static int8_t runner_output[MCUFORGE_OUTPUT_BYTES] __attribute__((section(".runner_io"), aligned(4)));

static void write_uint(uint32_t value)
{
    char text[12];
    int i = 11;
    text[i] = '\0';
    do {
        text[--i] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    sh_write0(&text[i]);
}

int main(void)
{
    const int32_t in = sh_open("input.bin", 1);
    const int32_t out = sh_open("output.bin", 5);
    if (in < 0 || out < 0) {
        sh_write0("mcuforge: cannot open input.bin/output.bin\n");
        return 1;
    }
    uint32_t count = 0;
    while (sh_read(in, runner_input, MCUFORGE_INPUT_BYTES) == 0) {
        if (mcuforge_invoke(runner_input, runner_output) != 0) {
            sh_write0("mcuforge: invoke failed\n");
            return 1;
        }
        if (sh_write(out, runner_output, MCUFORGE_OUTPUT_BYTES) != 0) {
            sh_write0("mcuforge: write failed\n");
            return 1;
        }
{% if postprocess_header %}
        mf_postprocess(runner_output, sh_write0);
{% endif %}
        count++;
    }
    sh_close(in);
    sh_close(out);
    sh_write0("mcuforge: inferences=");
    write_uint(count);
    sh_write0(" stack_high_water_bytes=");
    write_uint(mf_stack_high_water_bytes());
    sh_write0("\n");
    return 0;
}
