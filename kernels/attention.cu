// attention.cu — paged, variable-length, causal attention with an online softmax.
//
// Work item: one tile of up to kAttnTileQ consecutive query tokens of one
// segment, for one query head (grid = tiles x heads). The block walks the
// segment's keys from position 0 (with a sliding window, from the tile's
// earliest window start) up to the tile's largest position in tiles
// of kKeyTile keys, gathering each key's K/V through the CSR block table,
// and keeps a running max and sum per query (flash-style), so no score
// matrix ever reaches device memory.
//
// Batch invariance: key tiles always start at a multiple of kKeyTile in
// absolute positions (0, or with a sliding window the last multiple at or
// before the earliest window start of the tile's queries), and a fully
// masked key tile leaves a row's state bit for bit unchanged, so a query's
// result does not depend on which other queries share its tile or step, nor
// on how many of the tiles before its window were skipped. This is what makes cached and uncached runs agree on the GPU up to
// the GEMMs alone.
//
// Layout: 256 threads as a 16 x 16 grid (ty, tx). Thread (ty, tx) owns query
// rows ty + 16 i (i < 4), score columns tx + 16 j (j < 4) and output columns
// tx + 16 j (j < ceil(head_dim / 16); head_dim 8 uses half of tx). Shared rows are padded to an odd length of
// floats, so the 16 rows a half-warp reads at one column fall in 16 banks.
#include <limits.h>

#include "device_util.cuh"

namespace lmscore_cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kKeyTile = 64;
constexpr float kNegInf = -INFINITY;

// Loads 16 bytes (4 floats or 8 bf16) and widens them to fp32.
__device__ __forceinline__ void load16(const float *src, float *out) {
    const float4 v = *reinterpret_cast<const float4 *>(src);
    out[0] = v.x;
    out[1] = v.y;
    out[2] = v.z;
    out[3] = v.w;
}
__device__ __forceinline__ void load16(const __nv_bfloat16 *src, float *out) {
    const uint4 raw = *reinterpret_cast<const uint4 *>(src);
    const __nv_bfloat162 *pairs = reinterpret_cast<const __nv_bfloat162 *>(&raw);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
        const float2 f = __bfloat1622float2(pairs[k]);
        out[2 * k] = f.x;
        out[2 * k + 1] = f.y;
    }
}

template <int D> constexpr size_t smem_bytes() {
    constexpr int BQ = kAttnTileQ, BK = kKeyTile;
    return sizeof(float) * ((size_t)BQ * (D + 1) + (size_t)BK * (D + 1) + (size_t)BK * D +
                            (size_t)BQ * (BK + 1)) +
           sizeof(int) * BQ;
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) attention_kernel(AttentionParams p) {
    static_assert(D % 16 == 0 || D == 8, "head_dim must be 8 or a multiple of 16");
    static_assert(kAttnTileQ == 64 && kKeyTile == 64, "the 16x16 thread grid covers 64x64 tiles");
    constexpr int BQ = kAttnTileQ, BK = kKeyTile, DP = D + 1, PP = BK + 1;
    constexpr int NJ = (D + 15) / 16; // columns tx + 16 j < D (all of them unless D == 8)
    constexpr int VEC = 16 / sizeof(T);
    constexpr int DV = D / VEC;

    extern __shared__ float smem[];
    float *sQ = smem;          // (BQ, DP) queries, pre-scaled by scale * log2(e)
    float *sK = sQ + BQ * DP;  // (BK, DP)
    float *sV = sK + BK * DP;  // (BK, D)
    float *sP = sV + BK * D;   // (BQ, PP) probabilities of the current key tile
    int *sPos = reinterpret_cast<int *>(sP + BQ * PP); // (BQ) query positions, -1 past the tile

    const AttnTile tile = p.tiles[blockIdx.x];
    const int head = blockIdx.y;
    const int kv_head = head / (p.n_head / p.n_head_kv);
    const int64_t q_stride = (int64_t)p.n_head * D, kv_stride = (int64_t)p.n_head_kv * D;
    const int nq = tile.tok_end - tile.tok_begin;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int bs = p.block_size;
    // Softmax in base 2: exp(x) = exp2(x * log2 e), folded into the queries;
    // with soft-capping, the queries carry scale / softcap, and the tanh's
    // output is multiplied by softcap * log2 e.
    const bool capped = p.softcap > 0.f;
    const float qscale = capped ? p.scale / p.softcap : p.scale * 1.4426950408889634f;
    const float cap_log2 = p.softcap * 1.4426950408889634f;

    const T *q = (const T *)p.q;
    for (int i = tid; i < BQ * DV; i += kThreads) {
        const int r = i / DV, c = (i % DV) * VEC;
        float v[VEC];
        if (r < nq) {
            load16(q + (tile.tok_begin + r) * q_stride + head * D + c, v);
        } else {
#pragma unroll
            for (int e = 0; e < VEC; ++e) v[e] = 0.f;
        }
#pragma unroll
        for (int e = 0; e < VEC; ++e) sQ[r * DP + c + e] = v[e] * qscale;
    }
    for (int i = tid; i < BQ; i += kThreads) sPos[i] = i < nq ? p.positions[tile.tok_begin + i] : -1;
    __syncthreads();

    int max_pos = -1, min_pos = INT_MAX;
    for (int i = 0; i < nq; ++i) {
        max_pos = max(max_pos, sPos[i]);
        min_pos = min(min_pos, sPos[i]);
    }
    const int n_keys = max_pos + 1;
    // Keys before key_lo are outside every window of the tile: never read.
    const int key_lo = p.window > 0 ? max(0, min_pos - p.window + 1) : 0;

    int my_pos[4], my_lo[4];
    float m[4], l[4], o[4][NJ];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        my_pos[i] = sPos[ty + 16 * i];
        my_lo[i] = p.window > 0 ? my_pos[i] - p.window + 1 : 0;
        m[i] = kNegInf;
        l[i] = 0.f;
#pragma unroll
        for (int j = 0; j < NJ; ++j) o[i][j] = 0.f;
    }

    const T *k_cache = (const T *)p.k_cache, *v_cache = (const T *)p.v_cache;
    const int32_t *table = p.block_indices + tile.blk_begin;

    for (int kb = key_lo / BK * BK; kb < n_keys; kb += BK) {
        __syncthreads(); // the previous tile's readers of sK, sV, sP are done

        for (int i = tid; i < BK * DV; i += kThreads) {
            const int kk = i / DV, c = (i % DV) * VEC;
            const int pos = kb + kk;
            float kv[VEC], vv[VEC];
            if (pos >= key_lo && pos < n_keys) {
                const int64_t slot = (int64_t)table[pos / bs] * bs + pos % bs;
                load16(k_cache + slot * kv_stride + kv_head * D + c, kv);
                load16(v_cache + slot * kv_stride + kv_head * D + c, vv);
            } else {
                // Zeros, not garbage: a masked key's probability is 0, and 0 * NaN is NaN.
#pragma unroll
                for (int e = 0; e < VEC; ++e) kv[e] = vv[e] = 0.f;
            }
#pragma unroll
            for (int e = 0; e < VEC; ++e) {
                sK[kk * DP + c + e] = kv[e];
                sV[kk * D + c + e] = vv[e];
            }
        }
        __syncthreads();

        float s[4][4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) s[i][j] = 0.f;
#pragma unroll 8
        for (int d = 0; d < D; ++d) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = sQ[(ty + 16 * i) * DP + d];
#pragma unroll
            for (int j = 0; j < 4; ++j) b[j] = sK[(tx + 16 * j) * DP + d];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) s[i][j] = fmaf(a[i], b[j], s[i][j]);
        }

#pragma unroll
        for (int i = 0; i < 4; ++i) {
            float row_max = kNegInf;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int kpos = kb + tx + 16 * j;
                if (capped) s[i][j] = cap_log2 * tanhf(s[i][j]);
                // Causal (and windowed), by absolute position.
                if (kpos > my_pos[i] || kpos < my_lo[i]) s[i][j] = kNegInf;
                row_max = fmaxf(row_max, s[i][j]);
            }
            // The 16 threads of a row are one half-warp.
#pragma unroll
            for (int off = 8; off > 0; off >>= 1) row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, off));
            const float m_new = fmaxf(m[i], row_max);
            // Nothing visible yet (a padding row, or keys all in the future):
            // keep the state as it is; exp2(-inf - 0) gives zero probabilities.
            const float base = m_new == kNegInf ? 0.f : m_new;
            const float alpha = exp2f(m[i] - base);
            float row_sum = 0.f;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const float pv = exp2f(s[i][j] - base);
                sP[(ty + 16 * i) * PP + tx + 16 * j] = pv;
                row_sum += pv;
            }
#pragma unroll
            for (int off = 8; off > 0; off >>= 1) row_sum += __shfl_xor_sync(0xffffffffu, row_sum, off);
            l[i] = l[i] * alpha + row_sum;
#pragma unroll
            for (int j = 0; j < NJ; ++j) o[i][j] *= alpha;
            m[i] = m_new;
        }
        __syncthreads();

        const int k_end = min(BK, n_keys - kb);
        for (int k = 0; k < k_end; ++k) {
            float v[NJ];
#pragma unroll
            for (int j = 0; j < NJ; ++j) v[j] = tx + 16 * j < D ? sV[k * D + tx + 16 * j] : 0.f;
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const float pk = sP[(ty + 16 * i) * PP + k];
#pragma unroll
                for (int j = 0; j < NJ; ++j) o[i][j] = fmaf(pk, v[j], o[i][j]);
            }
        }
    }

    T *out = (T *)p.out;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int r = ty + 16 * i;
        if (r >= nq) continue;
        // Every real query sees at least its own position, so l > 0.
        const float inv = 1.f / l[i];
        T *orow = out + (tile.tok_begin + r) * q_stride + head * D;
#pragma unroll
        for (int j = 0; j < NJ; ++j)
            if (tx + 16 * j < D) orow[tx + 16 * j] = from_f32<T>(o[i][j] * inv);
    }
}

template <typename T, int D> cudaError_t launch(const AttentionParams &p, cudaStream_t stream) {
    constexpr size_t smem = smem_bytes<D>();
    if (smem > 48 * 1024) {
        // Opting in is per device and cheap; doing it per launch keeps
        // multi-device processes right without a cache keyed by device.
        cudaError_t err = cudaFuncSetAttribute(attention_kernel<T, D>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (err != cudaSuccess) return err;
    }
    dim3 grid(p.n_tiles, p.n_head);
    attention_kernel<T, D><<<grid, kThreads, smem, stream>>>(p);
    return cudaGetLastError();
}

template <typename T> cudaError_t dispatch_head_dim(const AttentionParams &p, cudaStream_t stream) {
    switch (p.head_dim) {
    case 8: return launch<T, 8>(p, stream); // tiny models such as stories260K
    case 16: return launch<T, 16>(p, stream);
    case 32: return launch<T, 32>(p, stream);
    case 48: return launch<T, 48>(p, stream);
    case 64: return launch<T, 64>(p, stream);
    case 80: return launch<T, 80>(p, stream);
    case 96: return launch<T, 96>(p, stream);
    case 128: return launch<T, 128>(p, stream);
    case 256: return launch<T, 256>(p, stream);
    }
    return cudaErrorInvalidValue;
}

} // namespace

bool attention_uses_tc(DType dtype, int head_dim, bool force_simt) {
    return dtype == DType::BF16 && attention_tc_supports(head_dim) && !force_simt;
}

int attention_tile_rows(DType dtype, int head_dim, bool force_simt) {
    return attention_uses_tc(dtype, head_dim, force_simt) ? kAttnTileQTc : kAttnTileQ;
}

int attention_stack_heads(DType dtype, int head_dim, int n_head, int n_head_kv) {
    if (!attention_uses_tc(dtype, head_dim) || n_head_kv <= 0 || n_head % n_head_kv != 0) return 1;
    const int g = n_head / n_head_kv;
    return g > 1 && g <= kAttnTileQTc ? g : 1;
}

bool attention_supports_head_dim(int d) {
    return d == 8 || d == 16 || d == 32 || d == 48 || d == 64 || d == 80 || d == 96 || d == 128 || d == 256;
}

cudaError_t paged_attention(const AttentionParams &p, DType dtype, cudaStream_t stream) {
    if (p.n_tiles == 0) return cudaSuccess;
    if (!attention_supports_head_dim(p.head_dim) || p.n_head_kv <= 0 || p.n_head % p.n_head_kv != 0 ||
        p.block_size <= 0 || p.window < 0 || !(p.softcap >= 0.f) || !(p.scale > 0.f) ||
        (p.force_stages != 0 && p.force_stages != 2 && p.force_stages != 3))
        return cudaErrorInvalidValue; // a positive scale: the tensor-core softmax takes the max of raw q.k
    const bool tc = attention_uses_tc(dtype, p.head_dim, p.force_simt);
    if (p.groups && (!tc || p.n_groups <= 0)) return cudaErrorInvalidValue; // groups exist only on the tensor-core path
    if (p.stack_heads > 1) {
        // Stacked tiles exist only on the tensor-core path.
        if (!tc || p.stack_heads != p.n_head / p.n_head_kv || p.stack_heads > kAttnTileQTc)
            return cudaErrorInvalidValue;
        return paged_attention_tc(p, stream);
    }
    if (dtype == DType::F32) return dispatch_head_dim<float>(p, stream);
    if (tc) return paged_attention_tc(p, stream);
    return dispatch_head_dim<__nv_bfloat16>(p, stream);
}

} // namespace lmscore_cuda
