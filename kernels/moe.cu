// moe.cu — mixture of experts: routing, the grouping of tokens per expert,
// the gather of their rows and the weighted sum of the experts' outputs
// (kernels.h says how step.cpp strings them together).
//
// Batch invariance: every kernel here reads a token's own row (its logits,
// its choices, its experts' output rows) and computes it in a fixed order,
// so nothing about the other tokens of the step reaches its result. The
// grouping does depend on them — it decides where a token's rows sit in
// the gathered buffers — but a row's GEMM result does not depend on where
// it sits or on how many rows its expert got (the fixed plans, gemm.cpp).
#include "device_util.cuh"

namespace lmscore_cuda {
namespace {

constexpr int kRouteThreads = 128;
constexpr int kGroupThreads = 256; // a multiple of 32: the scan is per warp, then across warps
constexpr int kThreads = 256;

// A probability that routing has taken; real ones are in [0, 1] (the CPU
// core's marker, so that NaN logits pick the same way too).
constexpr float kTaken = -1.0f;

// One thread per token: the token's row is a few dozen to a few hundred
// logits, and a fixed sequential order per row is what makes the result
// the CPU core's and independent of the launch.
__global__ void route_kernel(float *logits, int n_tokens, int stride, int n_expert, int k, int norm, int32_t *chosen,
                             float *weight, int32_t *counts) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_tokens) return;
    float *p = logits + (int64_t)t * stride;
    int32_t *c = chosen + (int64_t)t * k;
    float *w = weight + (int64_t)t * k;
    float mx = p[0];
    for (int e = 1; e < n_expert; ++e) mx = mx < p[e] ? p[e] : mx; // std::max's comparison
    float sum = 0.f;
    for (int e = 0; e < n_expert; ++e) {
        p[e] = expf(p[e] - mx);
        sum += p[e];
    }
    for (int e = 0; e < n_expert; ++e) p[e] = p[e] / sum;
    for (int j = 0; j < k; ++j) {
        int best = -1;
        for (int e = 0; e < n_expert; ++e) {
            if (p[e] == kTaken) continue;
            if (best < 0 || p[e] > p[best]) best = e;
        }
        c[j] = best;
        w[j] = p[best];
        p[best] = kTaken;
    }
    // Increasing expert id: the order of the weighted sum.
    for (int j = 1; j < k; ++j)
        for (int i = j; i > 0 && c[i - 1] > c[i]; --i) {
            const int32_t ci = c[i];
            c[i] = c[i - 1];
            c[i - 1] = ci;
            const float wi = w[i];
            w[i] = w[i - 1];
            w[i - 1] = wi;
        }
    if (norm) {
        float total = 0.f;
        for (int j = 0; j < k; ++j) total += w[j];
        for (int j = 0; j < k; ++j) w[j] = w[j] / total;
    }
    // Integer counts: the same totals in any order of the atomics.
    for (int j = 0; j < k; ++j) atomicAdd(&counts[c[j]], 1);
}

// One block per expert: the block walks the tokens in step order, 256 at a
// time, and an exclusive scan of "chose this expert" flags gives each of
// its tokens the next row of the expert's range. A token chooses an expert
// at most once, so its slot j is unique.
__global__ void group_kernel(const int32_t *chosen, const int32_t *counts, int n_tokens, int k, int row_align,
                             int32_t *pair_pos) {
    __shared__ int32_t warp_total[kGroupThreads / 32];
    __shared__ int32_t s_start;
    const int x = blockIdx.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (threadIdx.x == 0) {
        int32_t s = 0;
        for (int y = 0; y < x; ++y) s += (counts[y] + row_align - 1) / row_align * row_align; // moe_expert_starts
        s_start = s;
    }
    __syncthreads();
    int32_t base = s_start;
    for (int t0 = 0; t0 < n_tokens; t0 += kGroupThreads) {
        const int t = t0 + threadIdx.x;
        int slot = -1;
        if (t < n_tokens)
            for (int j = 0; j < k; ++j)
                if (chosen[(int64_t)t * k + j] == x) slot = j;
        const unsigned ballot = __ballot_sync(0xffffffffu, slot >= 0);
        if (lane == 0) warp_total[warp] = __popc(ballot);
        __syncthreads();
        int32_t before = 0, total = 0;
        for (int w = 0; w < kGroupThreads / 32; ++w) {
            before += w < warp ? warp_total[w] : 0;
            total += warp_total[w];
        }
        if (slot >= 0) pair_pos[(int64_t)t * k + slot] = base + before + __popc(ballot & ((1u << lane) - 1u));
        base += total;
        __syncthreads(); // warp_total is rewritten by the next chunk
    }
}

template <typename T>
__global__ void gather_kernel(const T *h, const int32_t *pair_pos, int64_t n_pairs, int k, int n, T *rows) {
    const int64_t total = n_pairs * n;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t pair = i / n, c = i % n;
        rows[(int64_t)pair_pos[pair] * n + c] = h[(pair / k) * n + c];
    }
}

__global__ void combine_kernel(const float *y, const int32_t *pair_pos, const float *weight, int n_tokens, int k, int n,
                               const float *shared, const float *gate_logits, int gate_stride, float *out) {
    const int64_t total = (int64_t)n_tokens * n;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / n, c = i % n;
        float acc = 0.f;
        for (int j = 0; j < k; ++j)
            acc = __fmaf_rn(weight[t * k + j], y[(int64_t)pair_pos[t * k + j] * n + c], acc);
        if (shared) {
            const float scale = gate_logits ? 1.f / (1.f + expf(-gate_logits[t * gate_stride])) : 1.f;
            acc = __fmaf_rn(scale, shared[i], acc);
        }
        out[i] = acc;
    }
}

} // namespace

cudaError_t moe_route(float *logits, int n_tokens, int stride, int n_expert, int k, bool norm, int32_t *chosen,
                      float *weight, int32_t *counts, cudaStream_t stream) {
    if (n_expert < 1 || k < 1 || k > n_expert || stride < n_expert || n_tokens < 0) return cudaErrorInvalidValue;
    cudaError_t err = cudaMemsetAsync(counts, 0, (size_t)n_expert * 4, stream);
    if (err != cudaSuccess || n_tokens == 0) return err;
    route_kernel<<<(n_tokens + kRouteThreads - 1) / kRouteThreads, kRouteThreads, 0, stream>>>(
        logits, n_tokens, stride, n_expert, k, norm ? 1 : 0, chosen, weight, counts);
    return cudaGetLastError();
}

cudaError_t moe_group(const int32_t *chosen, const int32_t *counts, int n_tokens, int n_expert, int k, int row_align,
                      int32_t *pair_pos, cudaStream_t stream) {
    if (n_expert < 1 || k < 1 || row_align < 1 || n_tokens < 0) return cudaErrorInvalidValue;
    if (n_tokens == 0) return cudaSuccess;
    group_kernel<<<n_expert, kGroupThreads, 0, stream>>>(chosen, counts, n_tokens, k, row_align, pair_pos);
    return cudaGetLastError();
}

cudaError_t moe_gather(const void *h, const int32_t *pair_pos, int n_tokens, int k, int n, void *rows, DType dtype,
                       cudaStream_t stream) {
    const int64_t n_pairs = (int64_t)n_tokens * k;
    if (n_pairs == 0 || n == 0) return cudaSuccess;
    // A copy: bf16 moves as its 16 bits.
    if (dtype == DType::F32)
        gather_kernel<float><<<grid_for(n_pairs * n, kThreads), kThreads, 0, stream>>>(
            (const float *)h, pair_pos, n_pairs, k, n, (float *)rows);
    else
        gather_kernel<uint16_t><<<grid_for(n_pairs * n, kThreads), kThreads, 0, stream>>>(
            (const uint16_t *)h, pair_pos, n_pairs, k, n, (uint16_t *)rows);
    return cudaGetLastError();
}

cudaError_t moe_combine(const float *y, const int32_t *pair_pos, const float *weight, int n_tokens, int k, int n,
                        const float *shared, const float *gate_logits, int gate_stride, float *out,
                        cudaStream_t stream) {
    const int64_t total = (int64_t)n_tokens * n;
    if (total == 0) return cudaSuccess;
    combine_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(y, pair_pos, weight, n_tokens, k, n, shared,
                                                                       gate_logits, gate_stride, out);
    return cudaGetLastError();
}

} // namespace lmscore_cuda
