/* Adam training of R independent ReLU MLPs for one epoch, one run after the other.
 *
 * Compiled and loaded by mlp_kernel.py, in float (default) or double (-DREAL_DOUBLE). A run's
 * parameters, Adam state and activations (about 0.6 MB for 2-100-100-100-2 at batch 241) stay
 * in the core's cache for the whole epoch; the small matrix products use register-blocked
 * kernels.
 *
 * Layout (every width padded to a multiple of 8 with zeros, which stay zero: their
 * activations and gradients are 0, so Adam never moves them):
 *   params of a run: for each layer l, W_l (K_l x N_l, row-major: input rows, output columns),
 *   then b_l (N_l); K_0 = number of inputs (not padded), K_l = N_{l-1}.
 *   x: (runs, n, K_0) inputs in training order; t: (runs, n, classes) soft targets;
 *   c: (runs, n) coefficient of each sample's cross-entropy.
 * The loss of a batch is sum_i c_i CE(o_i, t_i), with o_i the logits (output 0) or their
 * softmax (output 1, the authors' network, whose cross-entropy applies a softmax again).
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#elif defined(__SSE__)
#include <xmmintrin.h>
#endif

#ifdef REAL_DOUBLE
typedef double real;
typedef long long lanes __attribute__((vector_size(32)));
typedef long long lane;
#define VL 4
#define SQRT sqrt
#define BROADCAST(a) ((vec){a, a, a, a})
#else
typedef float real;
typedef int lanes __attribute__((vector_size(32)));
typedef int lane;
#define VL 8
#define SQRT sqrtf
#define BROADCAST(a) ((vec){a, a, a, a, a, a, a, a})
#endif
typedef real vec __attribute__((vector_size(32)));
typedef real vec4 __attribute__((vector_size(4 * sizeof(real)))); /* 4 lanes */
typedef lane lanes4 __attribute__((vector_size(4 * sizeof(real))));
#define SHUF __builtin_shufflevector
#define MAX_LAYERS 64

static inline vec vload(const real *p) { vec v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(real *p, vec v) { memcpy(p, &v, sizeof v); }
static inline vec vrelu(vec v) { return (vec)((lanes)v & (v > 0)); }
#if defined(__x86_64__)
/* Keeps a loaded vector in a register (GCC otherwise folds the load into every FMA). */
#define KEEP(v) __asm__("" : "+x"(v))
#else
#define KEEP(v) ((void)0)
#endif

/* Adam (torch.optim.Adam, no weight decay) on one run: parameters w and moments m, v share a
 * layout; the scalars are those of the current step. */
typedef struct {
    real *w, *m, *v;
    real one_minus_beta1, beta2, one_minus_beta2, eps, step_size, inv_root;
} adam_t;

/* 1 / (sqrt(v) * inv_root + eps), Adam's denominator. In float32 with AVX, from the hardware's
 * approximate reciprocal square root and reciprocal, each refined by one Newton step (relative
 * error about 2e-7, the float32 rounding of the exact expression being 6e-8): the divider, shared
 * by square roots and divisions, would otherwise take a sixth of a step at batch 20. */
static inline vec adam_reciprocal(vec v, real inv_root, real eps) {
#if defined(__AVX__) && VL == 8
    __m256 floor = _mm256_max_ps((__m256)v, _mm256_set1_ps(1e-30f)); /* v = 0: sqrt(v) ~ 0, not 0 * inf */
    vec r = (vec)_mm256_rsqrt_ps(floor);
    r = r * (1.5f - 0.5f * (vec)floor * r * r); /* 1 / sqrt(max(v, 1e-30)) */
    vec d = v * r * inv_root + eps;             /* below 1e-30, v * r < 1e-15: d = eps to float precision */
    vec q = (vec)_mm256_rcp_ps((__m256)d);
    return q * (2.0f - d * q);
#else
    vec root;
    for (int q = 0; q < VL; q++) root[q] = SQRT(v[q]);
    return 1 / (root * inv_root + eps);
#endif
}

/* One Adam step of the VL parameters at w + o, whose gradient is g. */
static inline void adam_at(const adam_t *a, ptrdiff_t o, vec g) {
    vec m = vload(a->m + o), v = vload(a->v + o);
    m += a->one_minus_beta1 * (g - m); /* exp_avg.lerp_(grad, 1 - beta1) */
    v = v * a->beta2 + a->one_minus_beta2 * g * g;
    vstore(a->m + o, m);
    vstore(a->v + o, v);
    vstore(a->w + o, vload(a->w + o) - a->step_size * m * adam_reciprocal(v, a->inv_root, a->eps));
}

/* acc[i][j] = row[j] (or 0) + sum_p a(i, p) * b[p][j], for i < MR rows and j < NV vectors of
 * columns, a(i, p) = a[i * ai + p * ap]; stored to row first + i of c (row index[first + i] if
 * index), ReLU applied if relu. */
#define NN_BLOCK(MR, NV)                                                                               \
    static void nn_##MR##_##NV(int plen, const real *a, ptrdiff_t ai, ptrdiff_t ap, const real *b,      \
                               ptrdiff_t ldb, const real *row, real *c, ptrdiff_t ldc, int relu,        \
                               const int *index, int first) {                                           \
        vec acc[MR][NV];                                                                               \
        for (int j = 0; j < NV; j++) {                                                                 \
            vec r0 = row ? vload(row + j * VL) : (vec){0};                                             \
            for (int i = 0; i < MR; i++) acc[i][j] = r0;                                               \
        }                                                                                              \
        for (int p = 0; p < plen; p++) {                                                               \
            vec bv[NV];                                                                                \
            for (int j = 0; j < NV; j++) {                                                             \
                bv[j] = vload(b + p * ldb + j * VL);                                                   \
                KEEP(bv[j]);                                                                           \
            }                                                                                          \
            for (int i = 0; i < MR; i++) {                                                             \
                real scalar = a[i * ai + p * ap];                                                      \
                vec av = BROADCAST(scalar);                                                            \
                for (int j = 0; j < NV; j++) acc[i][j] += av * bv[j];                                  \
            }                                                                                          \
        }                                                                                              \
        for (int i = 0; i < MR; i++) {                                                                 \
            real *out = c + (index ? index[first + i] : first + i) * ldc;                              \
            for (int j = 0; j < NV; j++) vstore(out + j * VL, relu ? vrelu(acc[i][j]) : acc[i][j]);    \
        }                                                                                              \
    }
NN_BLOCK(1, 1) NN_BLOCK(2, 1) NN_BLOCK(3, 1) NN_BLOCK(4, 1)
NN_BLOCK(1, 2) NN_BLOCK(2, 2) NN_BLOCK(3, 2) NN_BLOCK(4, 2)
NN_BLOCK(1, 3) NN_BLOCK(2, 3) NN_BLOCK(3, 3) NN_BLOCK(4, 3)

typedef void (*nn_fn)(int, const real *, ptrdiff_t, ptrdiff_t, const real *, ptrdiff_t, const real *, real *, ptrdiff_t, int,
                      const int *, int);
static const nn_fn NN[5][4] = {
    {0, 0, 0, 0},
    {0, nn_1_1, nn_1_2, nn_1_3},
    {0, nn_2_1, nn_2_2, nn_2_3},
    {0, nn_3_1, nn_3_2, nn_3_3},
    {0, nn_4_1, nn_4_2, nn_4_3},
};

/* C (m x n) = row + A (m x plen) B (plen x n), A(i, p) = a[i * ai + p * ap], n a multiple of VL;
 * row i of the product goes to row index[i] of c if index (ReLU applied if relu). */
static void gemm_nn(int m, int n, int plen, const real *a, ptrdiff_t ai, ptrdiff_t ap, const real *b, ptrdiff_t ldb,
                    const real *row, real *c, ptrdiff_t ldc, int relu, const int *index) {
    int vectors = n / VL;
    for (int j = 0, nv; j < vectors; j += nv) {
        int left = vectors - j;
        nv = left == 4 ? 2 : left < 3 ? left : 3; /* 13 = 3 + 3 + 3 + 2 + 2: no 1-vector block */
        for (int i = 0; i < m; i += 4) {
            int mr = m - i < 4 ? m - i : 4;
            NN[mr][nv](plen, a + i * ai, ai, ap, b + j * VL, ldb, row ? row + j * VL : 0, c + j * VL, ldc, relu, index, i);
        }
    }
}

/* The four lane sums of a0..a3, in a fixed order. */
static inline vec4 reduce4(vec a0, vec a1, vec a2, vec a3) {
#if VL == 8
    vec t0 = SHUF(a0, a1, 0, 8, 2, 10, 4, 12, 6, 14) + SHUF(a0, a1, 1, 9, 3, 11, 5, 13, 7, 15);
    vec t1 = SHUF(a2, a3, 0, 8, 2, 10, 4, 12, 6, 14) + SHUF(a2, a3, 1, 9, 3, 11, 5, 13, 7, 15);
    vec u = SHUF(t0, t1, 0, 1, 8, 9, 4, 5, 12, 13) + SHUF(t0, t1, 2, 3, 10, 11, 6, 7, 14, 15);
    return SHUF(u, u, 0, 1, 2, 3) + SHUF(u, u, 4, 5, 6, 7);
#else
    vec t0 = SHUF(a0, a1, 0, 4, 2, 6) + SHUF(a0, a1, 1, 5, 3, 7);
    vec t1 = SHUF(a2, a3, 0, 4, 2, 6) + SHUF(a2, a3, 1, 5, 3, 7);
    return SHUF(t0, t1, 0, 1, 4, 5) + SHUF(t0, t1, 2, 3, 6, 7);
#endif
}

/* Rows i..i+NT_ROWS-1 (rows of them valid), columns k..k+3 of the back-propagation below. */
#define NT_ROWS 3
static inline void nt_block(int rows, int n, const real *g, ptrdiff_t ldg, const real *w, ptrdiff_t ldw, const real *h,
                            real *out, ptrdiff_t ldh) {
    vec acc[NT_ROWS][4];
    const real *gr[NT_ROWS];
    for (int r = 0; r < NT_ROWS; r++) {
        gr[r] = g + (r < rows ? r : 0) * ldg;
        for (int q = 0; q < 4; q++) acc[r][q] = (vec){0};
    }
    for (int p = 0; p < n; p += VL) {
        vec x[NT_ROWS];
        for (int r = 0; r < NT_ROWS; r++) {
            x[r] = vload(gr[r] + p);
            KEEP(x[r]);
        }
        for (int q = 0; q < 4; q++) {
            vec wq = vload(w + q * ldw + p);
            KEEP(wq);
            for (int r = 0; r < NT_ROWS; r++) acc[r][q] += x[r] * wq;
        }
    }
    vec4 sums[NT_ROWS];
    for (int r = 0; r < NT_ROWS; r++) sums[r] = reduce4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
    for (int r = 0; r < rows; r++) {
        vec4 active;
        memcpy(&active, h + r * ldh, sizeof active);
        sums[r] = (vec4)((lanes4)sums[r] & (active > 0));
        memcpy(out + r * ldh, &sums[r], sizeof sums[r]);
    }
}

/* Back-propagation through a layer and the ReLU before it:
 * out[i][k] = h[i][k] > 0 ? sum_n g[i][n] w[k][n] : 0, for i < m, k < kk (a multiple of 4). */
static void gemm_nt_relu(int m, int kk, int n, const real *g, ptrdiff_t ldg, const real *w, ptrdiff_t ldw, const real *h,
                         real *out, ptrdiff_t ldh) {
    /* Chunks of 30 rows of g stay in L1 while 4 rows of w at a time sweep over them. */
    for (int first = 0; first < m; first += 10 * NT_ROWS) {
        int end = m - first < 10 * NT_ROWS ? m : first + 10 * NT_ROWS;
        for (int k = 0; k < kk; k += 4)
            for (int i = first; i < end; i += NT_ROWS)
                nt_block(end - i < NT_ROWS ? end - i : NT_ROWS, n, g + i * ldg, ldg, w + k * ldw, ldw, h + i * ldh + k,
                         out + i * ldh + k, ldh);
    }
}

/* Gradient of sum_i c_i CE(o_i, t_i) with respect to the logits z (m x ldz, classes columns
 * used), written over z; returns that loss. */
static double head_gradient(int m, int classes, real *z, ptrdiff_t ldz, const real *t, const real *c, int softmax_output) {
    double p[64], q[64], loss = 0;
    for (int i = 0; i < m; i++) {
        real *zi = z + i * ldz;
        const real *ti = t + (ptrdiff_t)i * classes;
        double top = zi[0], sum = 0;
        for (int k = 1; k < classes; k++) top = zi[k] > top ? zi[k] : top;
        for (int k = 0; k < classes; k++) sum += p[k] = exp(zi[k] - top);
        for (int k = 0; k < classes; k++) p[k] /= sum;
        if (!softmax_output) {
            double log_sum = top + log(sum), ce = 0;
            for (int k = 0; k < classes; k++) {
                ce += ti[k] * (log_sum - zi[k]);
                zi[k] = (real)(c[i] * (p[k] - ti[k]));
            }
            loss += c[i] * ce;
            continue;
        }
        /* o = softmax(z) = p; the cross-entropy takes softmax(o) = q. */
        top = p[0];
        sum = 0;
        for (int k = 1; k < classes; k++) top = p[k] > top ? p[k] : top;
        for (int k = 0; k < classes; k++) sum += q[k] = exp(p[k] - top);
        double log_sum = top + log(sum), ce = 0, dot = 0;
        for (int k = 0; k < classes; k++) {
            ce += ti[k] * (log_sum - p[k]);
            q[k] = c[i] * (q[k] / sum - ti[k]); /* gradient with respect to o */
            dot += p[k] * q[k];
        }
        loss += c[i] * ce;
        for (int k = 0; k < classes; k++) zi[k] = (real)(p[k] * (q[k] - dot));
    }
    return loss;
}

/* Flush denormal numbers to zero while the kernel runs (restored at exit). Adam's first moment
 * of a weight whose gradient stays 0 decays geometrically through the denormal range, where
 * every operation is many times slower; flushing changes values below 1e-38 only. */
static unsigned flush_denormals(void) {
#if defined(__SSE__)
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040); /* FTZ | DAZ */
    return old;
#else
    return 0;
#endif
}

static void restore_denormals(unsigned old) {
#if defined(__SSE__)
    _mm_setcsr(old);
#else
    (void)old;
#endif
}

/* The inputs of a layer that are active (> 0) for some row of the batch. A ReLU network trained
 * with Adam at lr 0.01 leaves most hidden units at 0 on a given batch (60 to 97% of the second
 * and third layers' on the spirals): the other inputs contribute exact zeros to every product
 * of the layer, so its forward and backward passes run on the active ones only, gathered, and
 * give the same numbers as the full products. */
typedef struct {
    int count;   /* active inputs, then inactive ones up to a multiple of 4 (zero columns) */
    int *index;  /* (k) their indices, increasing among the active ones */
    char *on;    /* (k) 1 for the inputs in index (their weights' gradients are computed), else 0 */
    real *input; /* (rows x count) those columns of the layer's input */
    real *w;     /* (count x n) those rows of the layer's weight */
} active_t;

static void gather_active(int rows, int k, int n, const real *h, const real *w, active_t *s) {
    int count = 0;
    for (int j = 0; j < k; j += VL) {
        lanes any = {0};
        for (int i = 0; i < rows; i++) any |= vload(h + i * k + j) > 0;
        for (int q = 0; q < VL; q++)
            if (any[q]) s->index[count++] = j + q;
    }
    for (int p = 0, next = 0, active = count; count % 4; p++) { /* pad with inactive inputs */
        if (next < active && s->index[next] == p)
            next++;
        else
            s->index[count++] = p;
    }
    s->count = count;
    for (int p = 0; p < k; p++) s->on[p] = 0;
    for (int q = 0; q < count; q++) s->on[s->index[q]] = 1;
    for (int i = 0; i < rows; i++)
        for (int q = 0; q < count; q++) s->input[i * count + q] = h[i * k + s->index[q]];
    for (int q = 0; q < count; q++) memcpy(s->w + (ptrdiff_t)q * n, w + (ptrdiff_t)s->index[q] * n, n * sizeof(real));
}

/* Forward pass of rows [0, m) of x through one run's network into the activations h, gathering
 * the active inputs of every layer but the first into active[l]. */
static void forward(int depth, const int *k, const int *nn, const real *w, const ptrdiff_t *offset, const real *x, int m,
                    real **h, active_t *active) {
    for (int l = 0; l < depth; l++) {
        const real *wl = w + offset[l], *bl = wl + (ptrdiff_t)k[l] * nn[l];
        if (l == 0) {
            gemm_nn(m, nn[l], k[l], x, k[l], 1, wl, nn[l], bl, h[l], nn[l], l < depth - 1, 0);
            continue;
        }
        active_t *s = active + l;
        gather_active(m, k[l], nn[l], h[l - 1], wl, s);
        gemm_nn(m, nn[l], s->count, s->input, s->count, 1, s->w, nn[l], bl, h[l], nn[l], l < depth - 1, 0);
    }
}

/* Scratch memory of one call: activations and gathered inputs for rows rows, extra reals. */
typedef struct {
    ptrdiff_t offset[MAX_LAYERS]; /* of each layer in a run's parameters */
    real *h[MAX_LAYERS];          /* (rows x nn[l]) activations, then gradients, of layer l */
    active_t active[MAX_LAYERS];  /* active inputs of layer l >= 1 */
    real *extra;
    void *memory;
} scratch_t;

static int scratch_init(scratch_t *s, int depth, const int *k, const int *nn, int rows, ptrdiff_t extra) {
    ptrdiff_t reals = extra, ints = 0, o = 0;
    for (int l = 0; l < depth; l++) {
        s->offset[l] = o;
        o += (ptrdiff_t)k[l] * nn[l] + nn[l];
        reals += (ptrdiff_t)rows * nn[l] + (ptrdiff_t)rows * k[l] + (ptrdiff_t)k[l] * nn[l];
        ints += k[l];
    }
    size_t bytes = (size_t)reals * sizeof(real) + (size_t)ints * (sizeof(int) + 1);
    s->memory = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!s->memory) return -1;
    real *next = s->memory;
    s->extra = next;
    next += extra;
    for (int l = 0; l < depth; l++) {
        s->h[l] = next;
        s->active[l].input = next + (ptrdiff_t)rows * nn[l];
        s->active[l].w = s->active[l].input + (ptrdiff_t)rows * k[l];
        next = s->active[l].w + (ptrdiff_t)k[l] * nn[l];
    }
    int *index = (int *)next;
    char *on = (char *)(index + ints);
    for (int l = 0; l < depth; l++) {
        s->active[l].index = index;
        s->active[l].on = on;
        index += k[l];
        on += k[l];
    }
    return 0;
}

/* Predicted class (argmax of the logits, first maximum) of each of the n rows of x (n x k[0])
 * for runs [0, runs): labels (runs x n). Returns 0, or -1 if scratch memory is lacking. */
int mlp_predict(int runs, int depth, const int *k, const int *nn, int classes, const real *params, ptrdiff_t nparams,
                const real *x, int n, long long *labels) {
    enum { CHUNK = 256 };
    scratch_t s;
    if (scratch_init(&s, depth, k, nn, CHUNK, 0)) return -1;
    unsigned csr = flush_denormals();
    for (int r = 0; r < runs; r++)
        for (int first = 0; first < n; first += CHUNK) {
            int rows = n - first < CHUNK ? n - first : CHUNK;
            forward(depth, k, nn, params + r * nparams, s.offset, x + (ptrdiff_t)first * k[0], rows, s.h, s.active);
            for (int i = 0; i < rows; i++) {
                const real *z = s.h[depth - 1] + i * nn[depth - 1];
                int best = 0;
                for (int j = 1; j < classes; j++) best = z[j] > z[best] ? j : best;
                labels[(ptrdiff_t)r * n + first + i] = best;
            }
        }
    restore_denormals(csr);
    free(s.memory);
    return 0;
}

/* Trains runs [0, runs) for one epoch. k[l], nn[l]: input and (padded) output width of layer l;
 * batch: batch size (the last batch of the epoch may be smaller); step: Adam steps done so far;
 * loss: (runs) set to the sum over the epoch's steps of each step's loss (before its update).
 * Returns 0, or -1 if the scratch memory could not be allocated. */
int mlp_epoch(int runs, int depth, const int *k, const int *nn, int classes, real *params, real *m1, real *m2,
              ptrdiff_t nparams, const real *x, const real *t, const real *c, int n, int batch, int softmax_output,
              double lr, double beta1, double beta2, double eps, long step, double *loss) {
    int widest = 0;
    for (int l = 0; l < depth; l++) widest = nn[l] > widest ? nn[l] : widest;
    /* extra: the gradient, then three buffers of gradients below a layer (two in turn, one compact) */
    scratch_t s;
    if (scratch_init(&s, depth, k, nn, batch, nparams + 3 * (ptrdiff_t)batch * widest)) return -1;
    real *grad = s.extra, *turn[2] = {grad + nparams, grad + nparams + (ptrdiff_t)batch * widest};
    real *compact = turn[1] + (ptrdiff_t)batch * widest;
    unsigned csr = flush_denormals();
    int steps = (n + batch - 1) / batch;
    for (int r = 0; r < runs; r++) {
        adam_t adam = {params + r * nparams, m1 + r * nparams, m2 + r * nparams, (real)(1.0 - beta1), (real)beta2,
                       (real)(1.0 - beta2), (real)eps, 0, 0};
        loss[r] = 0;
        for (int st = 0; st < steps; st++) {
            int first = st * batch, rows = n - first < batch ? n - first : batch;
            const real *xs = x + ((ptrdiff_t)r * n + first) * k[0];
            forward(depth, k, nn, adam.w, s.offset, xs, rows, s.h, s.active);
            /* The loss gradient with respect to the logits (the padded ones are 0, and so is their
             * gradient); then, layer by layer from the top, the weight and bias gradients and the
             * gradient below, on the active inputs only (the others' weight gradients are 0). */
            real *g = s.h[depth - 1];
            loss[r] += head_gradient(rows, classes, g, nn[depth - 1], t + ((ptrdiff_t)r * n + first) * classes, c + (ptrdiff_t)r * n + first,
                          softmax_output);
            for (int l = depth - 1; l >= 0; l--) {
                real *gw = grad + s.offset[l], *gb = gw + (ptrdiff_t)k[l] * nn[l], *below = g == turn[0] ? turn[1] : turn[0];
                if (l == 0) {
                    gemm_nn(k[0], nn[0], rows, xs, 1, k[0], g, nn[0], 0, gw, nn[0], 0, 0);
                } else {
                    const active_t *a = s.active + l;
                    gemm_nn(a->count, nn[l], rows, a->input, 1, a->count, g, nn[l], 0, gw, nn[l], 0, a->index);
                    gemm_nt_relu(rows, a->count, nn[l], g, nn[l], a->w, nn[l], a->input, compact, a->count);
                    memset(below, 0, (size_t)rows * k[l] * sizeof(real));
                    for (int i = 0; i < rows; i++)
                        for (int q = 0; q < a->count; q++) below[i * k[l] + a->index[q]] = compact[i * a->count + q];
                }
                for (int j = 0; j < nn[l]; j += VL) {
                    vec sum = {0};
                    for (int i = 0; i < rows; i++) sum += vload(g + i * nn[l] + j);
                    vstore(gb + j, sum);
                }
                g = below;
            }
            double done = (double)(step + st + 1);
            adam.step_size = (real)(lr / (1.0 - pow(beta1, done)));
            adam.inv_root = (real)(1.0 / sqrt(1.0 - pow(beta2, done)));
            for (int l = 0; l < depth; l++) { /* weight rows of inactive inputs: gradient 0, not computed */
                for (int p = 0; p < k[l]; p++) {
                    ptrdiff_t row = s.offset[l] + (ptrdiff_t)p * nn[l];
                    int on = l == 0 || s.active[l].on[p];
                    for (int j = 0; j < nn[l]; j += VL) adam_at(&adam, row + j, on ? vload(grad + row + j) : (vec){0});
                }
                ptrdiff_t bias = s.offset[l] + (ptrdiff_t)k[l] * nn[l];
                for (int j = 0; j < nn[l]; j += VL) adam_at(&adam, bias + j, vload(grad + bias + j));
            }
        }
    }
    restore_denormals(csr);
    free(s.memory);
    return 0;
}
