/* Host runner of the front end: app clip|stream PCM.bin FEATURES.bin
 *   clip    PCM.bin is one clip of raw int16 samples; FEATURES.bin gets its frames (mf_frontend_clip)
 *   stream  PCM.bin is fed hop by hop (mf_frontend_process); one frame per whole hop */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mf_frontend.h"

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "clip") != 0 && strcmp(argv[1], "stream") != 0)) {
        fprintf(stderr, "usage: %s clip|stream PCM.bin FEATURES.bin\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[2], "rb");
    if (in == NULL) {
        fprintf(stderr, "cannot open %s\n", argv[2]);
        return 2;
    }
    fseek(in, 0, SEEK_END);
    const long bytes = ftell(in);
    fseek(in, 0, SEEK_SET);
    const int32_t n = (int32_t)(bytes / 2);
    int16_t *pcm = malloc(sizeof(int16_t) * (size_t)(n > 0 ? n : 1));
    int8_t *features = malloc((size_t)MF_FRONTEND_FEATURES * (size_t)(n / MF_FRONTEND_HOP_SAMPLES + 1));
    if (pcm == NULL || features == NULL || fread(pcm, sizeof(int16_t), (size_t)n, in) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        return 2;
    }
    fclose(in);
    mf_frontend_state_t state;
    int32_t frames = 0;
    if (strcmp(argv[1], "clip") == 0) {
        frames = mf_frontend_clip(&state, pcm, n, features);
    } else {
        mf_frontend_init(&state);
        for (int32_t start = 0; start + MF_FRONTEND_HOP_SAMPLES <= n; start += MF_FRONTEND_HOP_SAMPLES) {
            mf_frontend_process(&state, &pcm[start], &features[frames * MF_FRONTEND_FEATURES]);
            frames++;
        }
    }
    FILE *out = fopen(argv[3], "wb");
    if (out == NULL) {
        fprintf(stderr, "cannot open %s\n", argv[3]);
        return 2;
    }
    fwrite(features, 1, (size_t)frames * MF_FRONTEND_FEATURES, out);
    fclose(out);
    free(pcm);
    free(features);
    return 0;
}
