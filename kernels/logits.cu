// logits.cu — log-softmax at the target, arg-max and top-n in one pass over the vocabulary.
#include <limits.h>
#include <stdint.h>
#include <math_constants.h>

#include "device_util.cuh"

namespace lmscore_cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr float kNegInf = -INFINITY;

// (max, sum of exp(x - max)) pairs merge exactly up to rounding, in any order.
__device__ __forceinline__ void lse_merge(float &m, float &s, float m2, float s2) {
    const float mn = fmaxf(m, m2);
    if (mn == kNegInf) return; // both empty
    s = s * expf(m - mn) + s2 * expf(m2 - mn);
    m = mn;
}

// Adds v to a thread's running (max, sum of exp(x - max)).
__device__ __forceinline__ void lse_add(float &m, float &s, float v) {
    if (v > m) {
        s = s * expf(m - v) + 1.f;
        m = v;
    } else if (v > kNegInf) { // a -inf logit adds nothing (and -inf - -inf is NaN)
        s += expf(v - m);
    }
}

// The block's log-sum-exp from every thread's (m, s), returned to all
// threads; the merge order is fixed, so the result is too.
__device__ float block_lse(float m, float s, float *sm_m, float *sm_s) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
        const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
        lse_merge(m, s, m2, s2);
    }
    if (lane == 0) {
        sm_m[warp] = m;
        sm_s[warp] = s;
    }
    __syncthreads();
    float M = sm_m[0], S = sm_s[0];
    for (int w = 1; w < kWarps; ++w) lse_merge(M, S, sm_m[w], sm_s[w]);
    return M + logf(S);
}

// Larger value wins; equal values go to the lower id, so results do not
// depend on the thread layout.
__device__ __forceinline__ bool beats(float v, int i, float v2, int i2) {
    return v > v2 || (v == v2 && i < i2);
}

struct Best {
    float v;
    int i;
};

__device__ Best block_best(Best b, Best *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float v2 = __shfl_xor_sync(0xffffffffu, b.v, o);
        const int i2 = __shfl_xor_sync(0xffffffffu, b.i, o);
        if (beats(v2, i2, b.v, b.i)) b = {v2, i2};
    }
    if (lane == 0) scratch[warp] = b;
    __syncthreads();
    Best r = scratch[0];
    for (int w = 1; w < kWarps; ++w)
        if (beats(scratch[w].v, scratch[w].i, r.v, r.i)) r = scratch[w];
    __syncthreads();
    return r;
}

// A logit as the log-softmax sees it: soft-capped when the model asks
// (Gemma 2's final_softcap), in fp32, at every read, so that the arg-max,
// the top-n and the target's value all see the same capped number.
__device__ __forceinline__ float read_logit(const float *x, int i, float softcap) {
    const float v = x[i];
    return softcap > 0.f ? softcap * tanhf(v / softcap) : v;
}

__device__ __forceinline__ int64_t row_offset(const LogitsParams &p, int row) {
    return (int64_t)row * (p.row_stride > 0 ? p.row_stride : p.n_vocab);
}

// Adds four values to a thread's running (max, sum): one rescale of the
// sum for the four, so the chain of dependent exponentials per thread is a
// quarter as long as with lse_add (the one-value loop ran at a fifth of the
// memory bandwidth on an H200, latency-bound on that chain).
__device__ __forceinline__ void lse_add4(float &m, float &s, float a, float b, float c, float d) {
    const float mx = fmaxf(fmaxf(a, b), fmaxf(c, d));
    if (!(mx > kNegInf)) return; // all -inf: nothing to add
    const float mn = fmaxf(m, mx);
    // m = -inf (nothing yet) gives s * 0 = 0; a -inf value adds exp(-inf) = 0.
    s = s * expf(m - mn) + ((expf(a - mn) + expf(b - mn)) + (expf(c - mn) + expf(d - mn)));
    m = mn;
}

// One block per output row. VEC: the row is read four floats at a time
// (n_vocab and the row stride multiples of 4, the logits 16-byte aligned).
template <bool VEC>
__global__ void __launch_bounds__(kThreads) logits_kernel(LogitsParams p) {
    __shared__ float sm_m[kWarps], sm_s[kWarps];
    __shared__ Best sm_best[kWarps];
    const int row = blockIdx.x;
    const int V = p.n_vocab, K = p.top_n;
    const float *x = p.logits + row_offset(p, row);

    float m = kNegInf, s = 0.f;
    Best best = {kNegInf, INT_MAX};
    // Each thread's own top-K, sorted by decreasing value; it sees ids in
    // increasing order, so keeping an earlier equal value keeps the lower id.
    float top_v[kMaxTopN];
    int top_i[kMaxTopN];
    int n_top = 0;

    auto pick = [&](float v, int i) {
        if (v > best.v) best = {v, i};
        if (K > 0 && (n_top < K || v > top_v[n_top - 1])) {
            int j = n_top < K ? n_top++ : K - 1;
            while (j > 0 && top_v[j - 1] < v) {
                top_v[j] = top_v[j - 1];
                top_i[j] = top_i[j - 1];
                --j;
            }
            top_v[j] = v;
            top_i[j] = i;
        }
    };
    if (VEC) {
        const float4 *x4 = (const float4 *)x;
#pragma unroll 4
        for (int i4 = threadIdx.x; i4 < V / 4; i4 += kThreads) {
            float4 v = x4[i4];
            if (p.softcap > 0.f) {
                v.x = p.softcap * tanhf(v.x / p.softcap), v.y = p.softcap * tanhf(v.y / p.softcap);
                v.z = p.softcap * tanhf(v.z / p.softcap), v.w = p.softcap * tanhf(v.w / p.softcap);
            }
            lse_add4(m, s, v.x, v.y, v.z, v.w);
            // ids in increasing order within the thread, as pick assumes
            pick(v.x, 4 * i4), pick(v.y, 4 * i4 + 1), pick(v.z, 4 * i4 + 2), pick(v.w, 4 * i4 + 3);
        }
    } else {
        for (int i = threadIdx.x; i < V; i += kThreads) {
            const float v = read_logit(x, i, p.softcap);
            lse_add(m, s, v);
            pick(v, i);
        }
    }

    const float lse = block_lse(m, s, sm_m, sm_s);
    best = block_best(best, sm_best);
    if (threadIdx.x == 0) {
        const float xt = read_logit(x, p.target[row], p.softcap);
        p.logprob[row] = xt - lse;
        p.is_greedy[row] = xt == best.v ? 1 : 0;
    }

    // Merge the per-thread lists: K rounds of a block-wide arg-max over each
    // thread's next candidate.
    int head = 0;
    for (int k = 0; k < K; ++k) {
        Best mine = head < n_top ? Best{top_v[head], top_i[head]} : Best{kNegInf, INT_MAX};
        const Best win = block_best(mine, sm_best);
        if (head < n_top && mine.i == win.i) ++head;
        if (threadIdx.x == 0) {
            p.top_ids[(int64_t)row * K + k] = win.i;
            p.top_logprobs[(int64_t)row * K + k] = win.v - lse;
        }
    }
}

// top_n > kMaxTopN: too many for per-thread lists. K rounds over the row,
// each taking the best element strictly after the previous pick in the
// order (larger value, then lower id): O(top_n * n_vocab) per row, for the
// rare caller that asks for that many.
__global__ void __launch_bounds__(kThreads) top_rounds_kernel(LogitsParams p) {
    __shared__ float sm_m[kWarps], sm_s[kWarps];
    __shared__ Best sm_best[kWarps];
    const int row = blockIdx.x;
    const int V = p.n_vocab;
    const float *x = p.logits + row_offset(p, row);
    float m = kNegInf, s = 0.f;
    for (int i = threadIdx.x; i < V; i += kThreads) lse_add(m, s, read_logit(x, i, p.softcap));
    const float lse = block_lse(m, s, sm_m, sm_s);

    Best prev = {CUDART_INF_F, -1};
    for (int k = 0; k < p.top_n; ++k) {
        Best b = {kNegInf, INT_MAX};
        for (int i = threadIdx.x; i < V; i += kThreads) {
            const float v = read_logit(x, i, p.softcap);
            const bool after = v < prev.v || (v == prev.v && i > prev.i);
            if (after && beats(v, i, b.v, b.i)) b = {v, i};
        }
        prev = block_best(b, sm_best);
        if (threadIdx.x == 0) {
            p.top_ids[(int64_t)row * p.top_n + k] = prev.i;
            p.top_logprobs[(int64_t)row * p.top_n + k] = prev.v - lse;
        }
    }
}

} // namespace

cudaError_t logits_reduce(const LogitsParams &p, cudaStream_t stream) {
    if (p.n_rows == 0) return cudaSuccess;
    if (p.top_n < 0 || p.top_n > p.n_vocab || !(p.softcap >= 0.f) || (p.row_stride != 0 && p.row_stride < p.n_vocab))
        return cudaErrorInvalidValue;
    const int stride = p.row_stride > 0 ? p.row_stride : p.n_vocab;
    const bool vec = p.n_vocab % 4 == 0 && stride % 4 == 0 && aligned(16, {p.logits});
    auto pass = [&](const LogitsParams &q) {
        if (vec)
            logits_kernel<true><<<q.n_rows, kThreads, 0, stream>>>(q);
        else
            logits_kernel<false><<<q.n_rows, kThreads, 0, stream>>>(q);
    };
    if (p.top_n <= kMaxTopN) {
        pass(p);
        return cudaGetLastError();
    }
    LogitsParams q = p;
    q.top_n = 0;
    pass(q);
    top_rounds_kernel<<<p.n_rows, kThreads, 0, stream>>>(p);
    return cudaGetLastError();
}

} // namespace lmscore_cuda
