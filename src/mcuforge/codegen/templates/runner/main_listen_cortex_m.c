/* Cortex-M listen runner: reads input.wav (semihosting), runs mcuforge_listen on it, writes the features
 * and the scores to output.bin and prints the label, the scores and the stack high-water mark. */
#include <stdint.h>

#include "../frontend/mf_listen.h"
#include "mf_wav.h"
#include "semihost.h"

uint32_t mf_stack_high_water_bytes(void);

#define WAV_CAPACITY (256u * 1024u)
static uint8_t runner_wav[WAV_CAPACITY] __attribute__((section(".runner_io"), aligned(4)));
static int8_t runner_scores[MCUFORGE_OUTPUT_BYTES] __attribute__((section(".runner_io"), aligned(4)));

static void write_int(int32_t value)
{
    char text[13];
    int i = 12;
    uint32_t magnitude = value < 0 ? (uint32_t)(-value) : (uint32_t)value;
    text[i] = '\0';
    do {
        text[--i] = (char)('0' + magnitude % 10u);
        magnitude /= 10u;
    } while (magnitude != 0u);
    if (value < 0) {
        text[--i] = '-';
    }
    sh_write0(&text[i]);
}

int main(void)
{
    const int32_t in = sh_open("input.wav", 1);
    const int32_t out = sh_open("output.bin", 5);
    if (in < 0 || out < 0) {
        sh_write0("mcuforge: cannot open input.wav/output.bin\n");
        return 1;
    }
    const uint32_t size = WAV_CAPACITY - (uint32_t)sh_read(in, runner_wav, WAV_CAPACITY);
    sh_close(in);
    const int16_t *pcm;
    int32_t count;
    const int status = mf_wav_parse(runner_wav, size, MF_FRONTEND_SAMPLE_RATE, &pcm, &count);
    if (status != 0) {
        sh_write0("mcuforge: input.wav is not 16-bit mono PCM at the front end's rate (code ");
        write_int(status);
        sh_write0(")\n");
        return 1;
    }
    const int label = mcuforge_listen(pcm, count, runner_scores);
    if (label < 0) {
        sh_write0("mcuforge: invoke failed\n");
        return 1;
    }
    sh_write(out, mcuforge_listen_features(), MCUFORGE_INPUT_BYTES);
    sh_write(out, runner_scores, MCUFORGE_OUTPUT_BYTES);
    sh_close(out);
    sh_write0("mcuforge: label=");
    sh_write0(mcuforge_labels[label]);
    sh_write0(" scores=");
    for (int i = 0; i < MCUFORGE_OUTPUT_BYTES; ++i) {
        if (i > 0) {
            sh_write0(",");
        }
        write_int(runner_scores[i]);
    }
    sh_write0(" stack_high_water_bytes=");
    write_int((int32_t)mf_stack_high_water_bytes());
    sh_write0("\n");
    return 0;
}
