#include "mf_wav.h"

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static int same4(const uint8_t *p, const char *tag) { return p[0] == tag[0] && p[1] == tag[1] && p[2] == tag[2] && p[3] == tag[3]; }

int mf_wav_parse(const uint8_t *bytes, uint32_t size, uint32_t expected_rate, const int16_t **samples,
                 int32_t *count)
{
    if (size < 12 || !same4(bytes, "RIFF") || !same4(bytes + 8, "WAVE")) {
        return -1;
    }
    int format_ok = 0;
    uint32_t at = 12;
    while (at + 8 <= size) {
        const uint32_t chunk = le32(bytes + at + 4);
        const uint8_t *body = bytes + at + 8;
        if (same4(bytes + at, "fmt ")) {
            if (chunk < 16 || at + 8 + 16 > size) {
                return -2;
            }
            if (le16(body) != 1 || le16(body + 2) != 1 || le16(body + 14) != 16) {
                return -2;
            }
            if (le32(body + 4) != expected_rate) {
                return -3;
            }
            format_ok = 1;
        } else if (same4(bytes + at, "data")) {
            if (!format_ok || at + 8 + chunk > size) {
                return format_ok ? -4 : -2;
            }
            *samples = (const int16_t *)(const void *)body;
            *count = (int32_t)(chunk / 2);
            return 0;
        }
        at += 8 + chunk + (chunk & 1u);
    }
    return -4;
}
