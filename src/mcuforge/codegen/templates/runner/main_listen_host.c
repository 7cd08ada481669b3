/* Host listen runner: main FILE.wav [stream] prints the label and the int8 scores of the clip
 * (mcuforge_listen); with "stream" it feeds the clip hop by hop and prints every inference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../frontend/mf_listen.h"
#include "mf_wav.h"

static void print_scores(const int8_t *scores)
{
    for (int i = 0; i < MCUFORGE_OUTPUT_BYTES; ++i) {
        printf("%s%d", i ? "," : "", scores[i]);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "stream") != 0)) {
        fprintf(stderr, "usage: %s FILE.wav [stream]\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    if (in == NULL) {
        fprintf(stderr, "%s: cannot open\n", argv[1]);
        return 2;
    }
    static uint8_t wav[4u * 1024u * 1024u];
    const uint32_t size = (uint32_t)fread(wav, 1, sizeof wav, in);
    fclose(in);
    const int16_t *pcm;
    int32_t count;
    const int status = mf_wav_parse(wav, size, MF_FRONTEND_SAMPLE_RATE, &pcm, &count);
    if (status != 0) {
        fprintf(stderr, "%s: not 16-bit mono PCM at %d Hz (code %d)\n", argv[1], MF_FRONTEND_SAMPLE_RATE, status);
        return 2;
    }
    int8_t scores[MCUFORGE_OUTPUT_BYTES];
    if (argc == 2) {
        const int label = mcuforge_listen(pcm, count, scores);
        if (label < 0) {
            fprintf(stderr, "mcuforge_invoke failed\n");
            return 1;
        }
        printf("label=%s scores=", mcuforge_labels[label]);
        print_scores(scores);
        printf("\n");
        return 0;
    }
    static mcuforge_stream_t stream;
    mcuforge_stream_init(&stream);
    for (int32_t start = 0; start + MF_FRONTEND_HOP_SAMPLES <= count; start += MF_FRONTEND_HOP_SAMPLES) {
        if (mcuforge_stream_push(&stream, &pcm[start], scores)) {
            printf("hop=%d scores=", (int)stream.hops);
            print_scores(scores);
            printf(" heard=%s%s\n", stream.heard >= 0 ? mcuforge_labels[stream.heard] : "-",
                   stream.new_command ? " new" : "");
        }
    }
    return 0;
}
