/* gguf_quant.c: tensor data in GGUF's types: f32, f16, bf16 and q8_0, to
 * and from fp32, bit for bit as ggml's reference code (and llama.cpp's
 * Python converter) produce them. */
#include "lmc/gguf.h"

#include <math.h>
#include <string.h>

typedef union {
    uint32_t u;
    float f;
} f32_bits;

static uint32_t bits(float x) { return ((f32_bits){.f = x}).u; }
static float from_bits(uint32_t u) { return ((f32_bits){.u = u}).f; }

/* Round to nearest even; past the largest half (65504, up to the halfway
 * point 65520) is infinity; NaN stays NaN. */
uint16_t lmc_fp32_to_fp16(float x)
{
    uint32_t u = bits(x), sign = (u >> 16) & 0x8000, ax = u & 0x7fffffff;
    if (ax >= 0x7f800000) /* inf, nan (kept quiet, with its top payload bits) */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000 ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    if (ax >= 0x477ff000)
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000) /* below 2^-14: a subnormal half, in units of 2^-24 (1024 = the smallest normal) */
        return (uint16_t)(sign | (uint32_t)lrintf(from_bits(ax) * 16777216.0f));
    uint32_t h = (((ax >> 23) - 112) << 10) | ((ax >> 13) & 0x3ff), rest = ax & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++; /* a carry out of the mantissa steps the exponent, as it should */
    return (uint16_t)(sign | h);
}

float lmc_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) {
        float m = (float)man * (1.0f / 16777216.0f);
        return sign ? -m : m;
    }
    return from_bits(sign | (exp == 31 ? 0x7f800000u | (man << 13) : ((exp + 112) << 23) | (man << 13)));
}

/* ggml_compute_fp32_to_bf16: nearest even; NaN made quiet. */
uint16_t lmc_fp32_to_bf16(float x)
{
    uint32_t u = bits(x);
    if ((u & 0x7fffffff) > 0x7f800000)
        return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

size_t lmc_ggml_bytes(lmc_ggml_type type, uint64_t n)
{
    switch (type) {
    case LMC_GGML_F32: return (size_t)n * 4;
    case LMC_GGML_F16:
    case LMC_GGML_BF16: return (size_t)n * 2;
    case LMC_GGML_Q8_0: return (size_t)(n / LMC_Q8_0_BLOCK) * LMC_Q8_0_BYTES;
    }
    return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* quantize_row_q8_0_ref: d = amax / 127 (kept fp16), q = roundf(x / d)
 * computed as x * (1 / d) with the fp32 d, as ggml does. */
static void q8_0_block(const float *x, uint8_t *out)
{
    float amax = 0.0f;
    for (int j = 0; j < LMC_Q8_0_BLOCK; j++)
        amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    put16(out, lmc_fp32_to_fp16(d));
    for (int j = 0; j < LMC_Q8_0_BLOCK; j++)
        out[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

void lmc_ggml_encode(lmc_ggml_type type, const float *x, size_t n, void *dst)
{
    uint8_t *o = dst;
    switch (type) {
    case LMC_GGML_F32:
        for (size_t i = 0; i < n; i++) {
            uint32_t u = bits(x[i]);
            for (int b = 0; b < 4; b++)
                o[4 * i + (size_t)b] = (uint8_t)(u >> (8 * b));
        }
        break;
    case LMC_GGML_F16:
        for (size_t i = 0; i < n; i++)
            put16(o + 2 * i, lmc_fp32_to_fp16(x[i]));
        break;
    case LMC_GGML_BF16:
        for (size_t i = 0; i < n; i++)
            put16(o + 2 * i, lmc_fp32_to_bf16(x[i]));
        break;
    case LMC_GGML_Q8_0:
        for (size_t b = 0; b < n / LMC_Q8_0_BLOCK; b++)
            q8_0_block(x + b * LMC_Q8_0_BLOCK, o + b * LMC_Q8_0_BYTES);
        break;
    }
}

void lmc_ggml_decode(lmc_ggml_type type, const void *src, size_t first, size_t count, float *dst)
{
    const uint8_t *p = src;
    switch (type) {
    case LMC_GGML_F32:
        for (size_t i = 0; i < count; i++) {
            const uint8_t *q = p + 4 * (first + i);
            dst[i] = from_bits((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24);
        }
        break;
    case LMC_GGML_F16:
        for (size_t i = 0; i < count; i++)
            dst[i] = lmc_fp16_to_fp32(get16(p + 2 * (first + i)));
        break;
    case LMC_GGML_BF16:
        for (size_t i = 0; i < count; i++)
            dst[i] = from_bits((uint32_t)get16(p + 2 * (first + i)) << 16);
        break;
    case LMC_GGML_Q8_0:
        for (size_t b = 0; b < count / LMC_Q8_0_BLOCK; b++) {
            const uint8_t *blk = p + (first / LMC_Q8_0_BLOCK + b) * LMC_Q8_0_BYTES;
            float d = lmc_fp16_to_fp32(get16(blk));
            for (int j = 0; j < LMC_Q8_0_BLOCK; j++)
                dst[b * LMC_Q8_0_BLOCK + (size_t)j] = d * (float)(int8_t)blk[2 + j];
        }
        break;
    }
}
