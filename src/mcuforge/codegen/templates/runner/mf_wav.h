/* A minimal RIFF/WAVE reader for the runners: finds the 16-bit mono PCM "data" chunk in a file image. */
#ifndef MF_WAV_H
#define MF_WAV_H

#include <stdint.h>

/* Returns 0 and sets *samples / *count, or a negative code: -1 not RIFF/WAVE, -2 not 16-bit mono PCM,
 * -3 wrong sample rate, -4 no data chunk (or truncated). */
int mf_wav_parse(const uint8_t *bytes, uint32_t size, uint32_t expected_rate, const int16_t **samples,
                 int32_t *count);

#endif
