/* Host runner: main INPUT OUTPUT. Reads consecutive inputs from INPUT, runs mcuforge_invoke on each and
 * writes the outputs to OUTPUT (and, with a post-processing module, prints its result). */
#include <stdint.h>
#include <stdio.h>

#include "../model.h"
{% if postprocess_header %}
#include "../{{ postprocess_header }}"

static void runner_write(const char *text)
{
    fputs(text, stdout);
}
{% endif %}

static int8_t runner_input[MCUFORGE_INPUT_BYTES];
static int8_t runner_output[MCUFORGE_OUTPUT_BYTES];

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    FILE *out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        fprintf(stderr, "cannot open %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    unsigned count = 0;
    while (fread(runner_input, 1, sizeof runner_input, in) == sizeof runner_input) {
        if (mcuforge_invoke(runner_input, runner_output) != 0) {
            fprintf(stderr, "mcuforge_invoke failed\n");
            return 1;
        }
        fwrite(runner_output, 1, sizeof runner_output, out);
{% if postprocess_header %}
        mf_postprocess(runner_output, runner_write);
{% endif %}
        count++;
    }
    fclose(in);
    fclose(out);
    printf("mcuforge: inferences=%u\n", count);
    return 0;
}
