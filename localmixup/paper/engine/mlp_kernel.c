/* One epoch of Adam training of R independent ReLU MLPs, one run after the other.
 *
 * Compiled and loaded by mlp_kernel.py, in float (default) or double (-DREAL_DOUBLE). A run's parameters, Adam
 * state and activations (about 0.6 MB for 2-100-100-100-2 at batch 241) stay in the core's
 * cache for the whole epoch, and the small matrix products use register-blocked kernels:
 * the per-step overhead and the cache misses of stacked torch operations are gone.
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
typedef long long mask __attribute__((vector_size(32)));
typedef long long mask4_t;
#define VL 4
#define SQRT sqrt
#define BROADCAST(a) ((vec){a, a, a, a})
#else
typedef float real;
typedef int mask __attribute__((vector_size(32)));
typedef int mask4_t;
#define VL 8
#define SQRT sqrtf
#define BROADCAST(a) ((vec){a, a, a, a, a, a, a, a})
#endif
typedef real vec __attribute__((vector_size(32)));
typedef real vec4 __attribute__((vector_size(4 * sizeof(real))));  /* 4 lanes */
typedef mask4_t mask4 __attribute__((vector_size(4 * sizeof(real))));
#define SHUF __builtin_shufflevector

static inline vec vload(const real *p) { vec v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(real *p, vec v) { memcpy(p, &v, sizeof v); }
static inline vec vrelu(vec v) { return (vec)((mask)v & (v > 0)); }
#if defined(__x86_64__)
/* Keeps a loaded vector in a register (GCC otherwise folds the load into every FMA). */
#define KEEP(v) __asm__("" : "+x"(v))
#else
#define KEEP(v) ((void)0)
#endif

/* acc[i][j] = row[j] (or 0) + sum_p a(i, p) * b[p][j], i < MR rows, j < NV vectors of columns;
 * a(i, p) = a[i * ai + p * ap]. Stored to c (ReLU applied when relu != 0). */
#define NN_BLOCK(MR, NV)                                                                          \
    static void nn_##MR##_##NV(int plen, const real *a, ptrdiff_t ai, ptrdiff_t ap, const real *b, \
                               ptrdiff_t ldb, const real *row, real *c, ptrdiff_t ldc, int relu) { \
        vec acc[MR][NV];                                                                          \
        for (int j = 0; j < NV; j++) {                                                            \
            vec r0 = row ? vload(row + j * VL) : (vec){0};                                        \
            for (int i = 0; i < MR; i++) acc[i][j] = r0;                                          \
        }                                                                                         \
        for (int p = 0; p < plen; p++) {                                                          \
            vec bv[NV];                                                                           \
            for (int j = 0; j < NV; j++) { bv[j] = vload(b + p * ldb + j * VL); KEEP(bv[j]); }    \
            for (int i = 0; i < MR; i++) {                                                        \
                real ap_ = a[i * ai + p * ap];                                           \
                vec av = BROADCAST(ap_);                                                 \
                for (int j = 0; j < NV; j++) acc[i][j] += av * bv[j];                             \
            }                                                                                     \
        }                                                                                         \
        for (int i = 0; i < MR; i++)                                                              \
            for (int j = 0; j < NV; j++) vstore(c + i * ldc + j * VL, relu ? vrelu(acc[i][j]) : acc[i][j]); \
    }
NN_BLOCK(1, 1) NN_BLOCK(2, 1) NN_BLOCK(3, 1) NN_BLOCK(4, 1)
NN_BLOCK(1, 2) NN_BLOCK(2, 2) NN_BLOCK(3, 2) NN_BLOCK(4, 2)
NN_BLOCK(1, 3) NN_BLOCK(2, 3) NN_BLOCK(3, 3) NN_BLOCK(4, 3)

typedef void (*nn_fn)(int, const real *, ptrdiff_t, ptrdiff_t, const real *, ptrdiff_t, const real *, real *, ptrdiff_t, int);
static const nn_fn NN[5][4] = {
    {0, 0, 0, 0},
    {0, nn_1_1, nn_1_2, nn_1_3},
    {0, nn_2_1, nn_2_2, nn_2_3},
    {0, nn_3_1, nn_3_2, nn_3_3},
    {0, nn_4_1, nn_4_2, nn_4_3},
};

/* C (M x N) = row + A (M x P) B (P x N), with A(i, p) = a[i * ai + p * ap]; N a multiple of VL. */
static void gemm_nn(int m, int n, int plen, const real *a, ptrdiff_t ai, ptrdiff_t ap, const real *b,
                    ptrdiff_t ldb, const real *row, real *c, ptrdiff_t ldc, int relu) {
    int vectors = n / VL;
    for (int j = 0, nv; j < vectors; j += nv) {
        int left = vectors - j;
        nv = left == 4 ? 2 : left < 3 ? left : 3; /* 13 = 3 + 3 + 3 + 2 + 2: no 1-vector block */
        for (int i = 0; i < m; i += 4) {
            int mr = m - i < 4 ? m - i : 4;
            NN[mr][nv](plen, a + i * ai, ai, ap, b + j * VL, ldb, row ? row + j * VL : 0, c + i * ldc + j * VL, ldc, relu);
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

/* Rows i..i+NT_ROWS-1 of the back-propagation below, for columns k..k+3. */
#define NT_ROWS 3
static inline void nt_block(int rows, int n, const real *g, ptrdiff_t ldg, const real *w, ptrdiff_t ldw, real *h, ptrdiff_t ldh) {
    vec acc[NT_ROWS][4] = {{{0}}};
    const real *gr[NT_ROWS];
    for (int r = 0; r < NT_ROWS; r++) gr[r] = g + (r < rows ? r : 0) * ldg;
    for (int p = 0; p < n; p += VL) {
        vec x[NT_ROWS];
        for (int r = 0; r < NT_ROWS; r++) { x[r] = vload(gr[r] + p); KEEP(x[r]); }
        for (int q = 0; q < 4; q++) {
            vec wq = vload(w + q * ldw + p);
            KEEP(wq);
            for (int r = 0; r < NT_ROWS; r++) acc[r][q] += x[r] * wq;
        }
    }
    for (int r = 0; r < NT_ROWS; r++) {
        vec4 sum = reduce4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]), old;
        if (r >= rows) break;
        memcpy(&old, h + r * ldh, sizeof old);
        sum = (vec4)((mask4)sum & (old > 0));
        memcpy(h + r * ldh, &sum, sizeof sum);
    }
}

/* Back-propagation through a layer and the ReLU before it, in place:
 * h[i][k] = h[i][k] > 0 ? sum_n g[i][n] w[k][n] : 0, for i < m, k < kk (a multiple of 4). */
static void gemm_nt_relu(int m, int kk, int n, const real *g, ptrdiff_t ldg, const real *w, ptrdiff_t ldw,
                         real *h, ptrdiff_t ldh) {
    /* Chunks of 30 rows of g stay in L1 while 4 rows of w at a time sweep over them. */
    for (int first = 0; first < m; first += 10 * NT_ROWS) {
        int end = m - first < 10 * NT_ROWS ? m : first + 10 * NT_ROWS;
        for (int k = 0; k < kk; k += 4)
            for (int i = first; i < end; i += NT_ROWS)
                nt_block(end - i < NT_ROWS ? end - i : NT_ROWS, n, g + i * ldg, ldg, w + k * ldw, ldw, h + i * ldh + k, ldh);
    }
}

/* Gradient of sum_i c_i CE(o_i, t_i) with respect to the logits z (m x ldz, classes columns
 * used), written over z. */
static void head_gradient(int m, int classes, real *z, ptrdiff_t ldz, const real *t, const real *c, int softmax_output) {
    double p[64], q[64];
    for (int i = 0; i < m; i++) {
        real *zi = z + i * ldz;
        const real *ti = t + (ptrdiff_t)i * classes;
        double top = zi[0], sum = 0;
        for (int k = 1; k < classes; k++) top = zi[k] > top ? zi[k] : top;
        for (int k = 0; k < classes; k++) sum += p[k] = exp(zi[k] - top);
        for (int k = 0; k < classes; k++) p[k] /= sum;
        if (!softmax_output) {
            for (int k = 0; k < classes; k++) zi[k] = (real)(c[i] * (p[k] - ti[k]));
            continue;
        }
        /* o = softmax(z) = p; the cross-entropy takes softmax(o) = q. */
        top = p[0];
        sum = 0;
        for (int k = 1; k < classes; k++) top = p[k] > top ? p[k] : top;
        for (int k = 0; k < classes; k++) sum += q[k] = exp(p[k] - top);
        double dot = 0;
        for (int k = 0; k < classes; k++) {
            q[k] = c[i] * (q[k] / sum - ti[k]); /* gradient with respect to o */
            dot += p[k] * q[k];
        }
        for (int k = 0; k < classes; k++) zi[k] = (real)(p[k] * (q[k] - dot));
    }
}

/* 1 / (sqrt(v) * inv_root + e), Adam's denominator. In float32 with AVX, from the hardware's
 * approximate reciprocal square root and reciprocal, each refined by one Newton step (relative
 * error about 2e-7, the float32 rounding of the exact expression being 6e-8): the divider, shared
 * by sqrt and division, would otherwise take a fifth of a step at batch 20. */
static inline vec adam_reciprocal(vec v, real inv_root, real e) {
#if defined(__AVX__) && VL == 8
    __m256 floor = _mm256_max_ps((__m256)v, _mm256_set1_ps(1e-30f)); /* v = 0: sqrt(v) ~ 0, not 0 * inf */
    vec r = (vec)_mm256_rsqrt_ps(floor);
    r = r * (1.5f - 0.5f * (vec)floor * r * r); /* 1 / sqrt(max(v, 1e-30)) */
    vec d = v * r * inv_root + e;               /* below 1e-30, v * r < 1e-15: d = e to float precision */
    vec q = (vec)_mm256_rcp_ps((__m256)d);
    return q * (2.0f - d * q);
#else
    vec root;
    for (int q = 0; q < VL; q++) root[q] = SQRT(v[q]);
    return 1 / (root * inv_root + e);
#endif
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

/* Forward pass of rows [0, m) of x through one run's network into the scratch h. */
static void forward(int depth, const int *k, const int *nn, const real *w, const ptrdiff_t *offset, const real *x, int m, real **h) {
    const real *in = x;
    ptrdiff_t ldin = k[0];
    for (int l = 0; l < depth; l++) {
        const real *wl = w + offset[l], *bl = wl + (ptrdiff_t)k[l] * nn[l];
        gemm_nn(m, nn[l], k[l], in, ldin, 1, wl, nn[l], bl, h[l], nn[l], l < depth - 1);
        in = h[l];
        ldin = nn[l];
    }
}

/* Offsets of each layer's weight in a run's parameters, and scratch for rows rows of activations. */
static real *layout(int depth, const int *k, const int *nn, int rows, ptrdiff_t extra, ptrdiff_t *offset, real **h) {
    ptrdiff_t o = 0, a = 0;
    for (int l = 0; l < depth; l++) {
        offset[l] = o;
        o += (ptrdiff_t)k[l] * nn[l] + nn[l];
        a += (ptrdiff_t)rows * nn[l];
    }
    size_t bytes = ((size_t)a + (size_t)extra) * sizeof(real);
    real *scratch = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!scratch) return 0;
    for (int l = 0, used = 0; l < depth; l++) {
        h[l] = scratch + extra + used;
        used += rows * nn[l];
    }
    return scratch;
}

/* Predicted class (argmax of the logits, first maximum) of each of the n rows of x (n x k[0])
 * for runs [0, runs): labels (runs x n). Returns 0, or -1 if scratch memory is lacking. */
int mlp_predict(int runs, int depth, const int *k, const int *nn, int classes, const real *params, ptrdiff_t nparams,
                const real *x, int n, long long *labels) {
    enum { CHUNK = 256 };
    ptrdiff_t offset[64];
    real *h[64];
    real *scratch = layout(depth, k, nn, CHUNK, 0, offset, h);
    if (!scratch) return -1;
    unsigned csr = flush_denormals();
    for (int r = 0; r < runs; r++)
        for (int first = 0; first < n; first += CHUNK) {
            int rows = n - first < CHUNK ? n - first : CHUNK;
            forward(depth, k, nn, params + r * nparams, offset, x + (ptrdiff_t)first * k[0], rows, h);
            for (int i = 0; i < rows; i++) {
                const real *z = h[depth - 1] + i * nn[depth - 1];
                int best = 0;
                for (int j = 1; j < classes; j++) best = z[j] > z[best] ? j : best;
                labels[(ptrdiff_t)r * n + first + i] = best;
            }
        }
    restore_denormals(csr);
    free(scratch);
    return 0;
}

/* Trains runs [0, runs) for one epoch. k[l], nn[l]: input and (padded) output width of layer l;
 * batch: batch size (the last batch of the epoch may be smaller); step: Adam steps done so far.
 * Returns 0, or -1 if the scratch memory could not be allocated. */
int mlp_epoch(int runs, int depth, const int *k, const int *nn, int classes, real *params, real *m1, real *m2,
              ptrdiff_t nparams, const real *x, const real *t, const real *c, int n, int batch, int softmax_output,
              double lr, double beta1, double beta2, double eps, long step) {
    ptrdiff_t offset[64];
    real *h[64];
    real *scratch = layout(depth, k, nn, batch, nparams, offset, h), *grad = scratch;
    if (!scratch) return -1;
    unsigned csr = flush_denormals();
    int steps = (n + batch - 1) / batch;
    for (int r = 0; r < runs; r++) {
        real *w = params + r * nparams, *mr = m1 + r * nparams, *vr = m2 + r * nparams;
        for (int s = 0; s < steps; s++) {
            int first = s * batch, rows = n - first < batch ? n - first : batch;
            const real *xs = x + ((ptrdiff_t)r * n + first) * k[0];
            const real *ts = t + ((ptrdiff_t)r * n + first) * classes;
            const real *cs = c + (ptrdiff_t)r * n + first;
            forward(depth, k, nn, w, offset, xs, rows, h);
            /* loss gradient (the padded logits are 0, and so is their gradient), then backward:
             * gradient of layer l's output in h[l] */
            real *last = h[depth - 1];
            head_gradient(rows, classes, last, nn[depth - 1], ts, cs, softmax_output);
            for (int l = depth - 1; l >= 0; l--) {
                const real *below = l ? h[l - 1] : xs;
                ptrdiff_t ldb = l ? nn[l - 1] : k[0];
                real *gw = grad + offset[l], *gb = gw + (ptrdiff_t)k[l] * nn[l];
                gemm_nn(k[l], nn[l], rows, below, 1, ldb, h[l], nn[l], 0, gw, nn[l], 0);
                for (int j = 0; j < nn[l]; j += VL) {
                    vec sum = {0};
                    for (int i = 0; i < rows; i++) sum += vload(h[l] + i * nn[l] + j);
                    vstore(gb + j, sum);
                }
                if (l) gemm_nt_relu(rows, k[l], nn[l], h[l], nn[l], w + offset[l], nn[l], h[l - 1], nn[l - 1]);
            }
            /* Adam, as torch.optim.Adam (no weight decay, no amsgrad) */
            double done = (double)(step + s + 1);
            real step_size = (real)(lr / (1.0 - pow(beta1, done)));
            real inv_root = (real)(1.0 / sqrt(1.0 - pow(beta2, done)));
            real b1 = (real)(1.0 - beta1), b2 = (real)beta2, b2c = (real)(1.0 - beta2), e = (real)eps;
            for (ptrdiff_t j = 0; j < nparams; j += VL) {
                vec g = vload(grad + j), m = vload(mr + j), v = vload(vr + j);
                m += b1 * (g - m);
                v = v * b2 + b2c * g * g;
                vstore(mr + j, m);
                vstore(vr + j, v);
                vstore(w + j, vload(w + j) - step_size * m * adam_reciprocal(v, inv_root, e));
            }
        }
    }
    restore_denormals(csr);
    free(scratch);
    return 0;
}
