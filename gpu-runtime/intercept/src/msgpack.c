/* Minimal MessagePack: an encoder for the few control bodies we send (HELLO, MODULE_LOAD) and a
 * cursor-based decoder for their replies. Hand-written because the shim may depend only on libc. */
#include "rgpu.h"

#include <stdlib.h>
#include <string.h>

void rgpu_mp_init(struct rgpu_mp_writer *w) { memset(w, 0, sizeof(*w)); }
void rgpu_mp_free(struct rgpu_mp_writer *w) { free(w->buf); memset(w, 0, sizeof(*w)); }

static void put(struct rgpu_mp_writer *w, const void *p, size_t n)
{
    if (w->oom) return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        while (cap < w->len + n) cap *= 2;
        uint8_t *nb = realloc(w->buf, cap);
        if (!nb) { w->oom = 1; return; }
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_be(struct rgpu_mp_writer *w, uint8_t tag, uint64_t v, int bytes)
{
    uint8_t b[9];
    b[0] = tag;
    for (int i = 0; i < bytes; i++) b[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    put(w, b, (size_t)bytes + 1);
}

void rgpu_mp_array(struct rgpu_mp_writer *w, uint32_t n)
{
    if (n < 16) { uint8_t t = (uint8_t)(0x90 | n); put(w, &t, 1); }
    else if (n < 65536) put_be(w, 0xdc, n, 2);
    else put_be(w, 0xdd, n, 4);
}

void rgpu_mp_map(struct rgpu_mp_writer *w, uint32_t n)
{
    if (n < 16) { uint8_t t = (uint8_t)(0x80 | n); put(w, &t, 1); }
    else if (n < 65536) put_be(w, 0xde, n, 2);
    else put_be(w, 0xdf, n, 4);
}

void rgpu_mp_uint(struct rgpu_mp_writer *w, uint64_t v)
{
    if (v < 128) { uint8_t t = (uint8_t)v; put(w, &t, 1); }
    else if (v < 256) put_be(w, 0xcc, v, 1);
    else if (v < 65536) put_be(w, 0xcd, v, 2);
    else if (v <= 0xffffffffu) put_be(w, 0xce, v, 4);
    else put_be(w, 0xcf, v, 8);
}

void rgpu_mp_int(struct rgpu_mp_writer *w, int64_t v)
{
    if (v >= 0) { rgpu_mp_uint(w, (uint64_t)v); return; }
    if (v >= -32) { uint8_t t = (uint8_t)(int8_t)v; put(w, &t, 1); }
    else if (v >= INT32_MIN) put_be(w, 0xd2, (uint32_t)(int32_t)v, 4);
    else put_be(w, 0xd3, (uint64_t)v, 8);
}

void rgpu_mp_str(struct rgpu_mp_writer *w, const char *s)
{
    size_t n = strlen(s);
    if (n < 32) { uint8_t t = (uint8_t)(0xa0 | n); put(w, &t, 1); }
    else if (n < 256) put_be(w, 0xd9, n, 1);
    else if (n < 65536) put_be(w, 0xda, n, 2);
    else put_be(w, 0xdb, n, 4);
    put(w, s, n);
}

void rgpu_mp_nil(struct rgpu_mp_writer *w) { uint8_t t = 0xc0; put(w, &t, 1); }

/* ---- decoder ---- */

static int take_be(struct rgpu_mp_reader *r, int bytes, uint64_t *out)
{
    if (r->end - r->p < bytes) return -1;
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = (v << 8) | r->p[i];
    r->p += bytes;
    *out = v;
    return 0;
}

static int take_bytes(struct rgpu_mp_reader *r, struct rgpu_mp_value *v, uint32_t n, enum rgpu_mp_type t)
{
    if ((uint64_t)(r->end - r->p) < n) return -1;
    v->type = t;
    v->p = r->p;
    v->n = n;
    r->p += n;
    return 0;
}

int rgpu_mp_read(struct rgpu_mp_reader *r, struct rgpu_mp_value *v)
{
    uint64_t x;
    memset(v, 0, sizeof(*v));
    v->type = RGPU_MP_ERR;
    v->end = r->end;
    if (r->p >= r->end) return -1;
    uint8_t t = *r->p++;
    if (t < 0x80) { v->type = RGPU_MP_INT; v->i = t; return 0; }
    if (t >= 0xe0) { v->type = RGPU_MP_INT; v->i = (int8_t)t; return 0; }
    if ((t & 0xf0) == 0x80) { v->type = RGPU_MP_MAP; v->n = t & 0x0f; v->p = r->p; return 0; }
    if ((t & 0xf0) == 0x90) { v->type = RGPU_MP_ARRAY; v->n = t & 0x0f; v->p = r->p; return 0; }
    if ((t & 0xe0) == 0xa0) return take_bytes(r, v, t & 0x1f, RGPU_MP_STR);
    switch (t) {
    case 0xc0: v->type = RGPU_MP_NIL; return 0;
    case 0xc2: case 0xc3: v->type = RGPU_MP_BOOL; v->i = t == 0xc3; return 0;
    case 0xc4: case 0xc5: case 0xc6:
        if (take_be(r, 1 << (t - 0xc4), &x)) return -1;
        return take_bytes(r, v, (uint32_t)x, RGPU_MP_BIN);
    case 0xd9: case 0xda: case 0xdb:
        if (take_be(r, 1 << (t - 0xd9), &x)) return -1;
        return take_bytes(r, v, (uint32_t)x, RGPU_MP_STR);
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        if (take_be(r, 1 << (t - 0xcc), &x)) return -1;
        v->type = RGPU_MP_INT; v->i = (int64_t)x; return 0;
    case 0xd0: if (take_be(r, 1, &x)) return -1; v->type = RGPU_MP_INT; v->i = (int8_t)x; return 0;
    case 0xd1: if (take_be(r, 2, &x)) return -1; v->type = RGPU_MP_INT; v->i = (int16_t)x; return 0;
    case 0xd2: if (take_be(r, 4, &x)) return -1; v->type = RGPU_MP_INT; v->i = (int32_t)x; return 0;
    case 0xd3: if (take_be(r, 8, &x)) return -1; v->type = RGPU_MP_INT; v->i = (int64_t)x; return 0;
    case 0xca: {
        if (take_be(r, 4, &x)) return -1;
        uint32_t u = (uint32_t)x; float f; memcpy(&f, &u, 4);
        v->type = RGPU_MP_FLOAT; v->f = f; v->i = (int64_t)f; return 0;
    }
    case 0xcb: {
        if (take_be(r, 8, &x)) return -1;
        double d; memcpy(&d, &x, 8);
        v->type = RGPU_MP_FLOAT; v->f = d; v->i = (int64_t)d; return 0;
    }
    case 0xdc: case 0xdd:
        if (take_be(r, t == 0xdc ? 2 : 4, &x)) return -1;
        v->type = RGPU_MP_ARRAY; v->n = (uint32_t)x; v->p = r->p; return 0;
    case 0xde: case 0xdf:
        if (take_be(r, t == 0xde ? 2 : 4, &x)) return -1;
        v->type = RGPU_MP_MAP; v->n = (uint32_t)x; v->p = r->p; return 0;
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        if (r->end - r->p < 1) return -1;
        r->p++; /* ext type */
        return take_bytes(r, v, 1u << (t - 0xd4), RGPU_MP_EXT);
    case 0xc7: case 0xc8: case 0xc9:
        if (take_be(r, 1 << (t - 0xc7), &x)) return -1;
        if (r->end - r->p < 1) return -1;
        r->p++;
        return take_bytes(r, v, (uint32_t)x, RGPU_MP_EXT);
    default: return -1;
    }
}

int rgpu_mp_skip(struct rgpu_mp_reader *r)
{
    struct rgpu_mp_value v;
    if (rgpu_mp_read(r, &v)) return -1;
    uint64_t children = v.type == RGPU_MP_ARRAY ? v.n : v.type == RGPU_MP_MAP ? 2ull * v.n : 0;
    for (uint64_t i = 0; i < children; i++)
        if (rgpu_mp_skip(r)) return -1;
    return 0;
}

int rgpu_mp_map_find(const struct rgpu_mp_value *map, const char *key, struct rgpu_mp_reader *out)
{
    if (map->type != RGPU_MP_MAP) return -1;
    size_t klen = strlen(key);
    struct rgpu_mp_reader r = { map->p, map->end };
    for (uint32_t i = 0; i < map->n; i++) {
        struct rgpu_mp_value k;
        if (rgpu_mp_read(&r, &k)) return -1;
        if (k.type == RGPU_MP_STR && k.n == klen && memcmp(k.p, key, klen) == 0) {
            *out = r;
            return 0;
        }
        if (k.type == RGPU_MP_ARRAY || k.type == RGPU_MP_MAP) return -1; /* keys are strings here */
        if (rgpu_mp_skip(&r)) return -1;
    }
    return -1;
}

int rgpu_mp_map_get(const struct rgpu_mp_value *map, const char *key, struct rgpu_mp_value *v)
{
    struct rgpu_mp_reader r;
    if (rgpu_mp_map_find(map, key, &r)) return -1;
    return rgpu_mp_read(&r, v);
}

int rgpu_mp_get_int(const struct rgpu_mp_value *map, const char *key, int64_t *out)
{
    struct rgpu_mp_value v;
    if (rgpu_mp_map_get(map, key, &v)) return -1;
    if (v.type != RGPU_MP_INT && v.type != RGPU_MP_FLOAT && v.type != RGPU_MP_BOOL) return -1;
    *out = v.i;
    return 0;
}
