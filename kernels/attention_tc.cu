// attention_tc.cu — the bf16 paged attention on tensor cores (WMMA, bf16 in,
// fp32 accumulate), for head_dim 64 and 128. Same contract and the same
// batch invariance as the SIMT kernel in attention.cu, which serves every
// other case and is the fallback this one is tested beside.
//
// Block: 4 warps, 64 query rows (16 per warp), one head; or, with head
// stacking (AttentionParams::stack_heads = G > 1), up to 64 / G tokens x
// the G query heads of one kv head, row r = (token r / G, head r % G), so a
// segment of a few tokens still fills the tile and its keys are read once
// for the G heads. Per key tile of 64:
//   S = Q K^T (WMMA, fp32) -> shared -> masked online softmax in fp32, two
//   lanes per row -> P (bf16) -> P V (WMMA, fp32) -> O = O * alpha + P V,
// with O kept in shared memory in fp32, since WMMA fragments cannot be
// scaled row by row. Row sums use the rounded P that multiplies V, so the
// normalisation matches what was accumulated. A row's arithmetic does not
// depend on where in the tile it sits or what the other rows hold (keys
// past its position are masked to an exact 0 weight), so stacked and
// unstacked tiles give the same bits.
#include <limits.h>
#include <mma.h>

#include "device_util.cuh"

namespace lmscore_cuda {

bool attention_tc_supports(int head_dim) { return head_dim == 64 || head_dim == 128; }

namespace {

using bf16 = __nv_bfloat16;
namespace wmma = nvcuda::wmma;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int BQ = kAttnTileQ, BK = 64;
constexpr float kNegInf = -INFINITY;

// Row strides, padded against bank conflicts and kept to WMMA's rules
// (multiples of 8 bf16 or 4 floats; every fragment 32-byte aligned).
template <int D> struct Layout {
    static constexpr int LDH = D + 8;   // sQ, sK, sV (bf16)
    static constexpr int LDP = BK + 8;  // sP (bf16)
    static constexpr int LDS = BK + 4;  // sS (f32)
    static constexpr int LDO = D + 4;   // sO, sPV (f32)
    static constexpr size_t q = 0;
    static constexpr size_t k = q + sizeof(bf16) * BQ * LDH;
    static constexpr size_t v = k + sizeof(bf16) * BK * LDH;
    static constexpr size_t p = v + sizeof(bf16) * BK * LDH;
    static constexpr size_t s = p + sizeof(bf16) * BQ * LDP;
    static constexpr size_t o = s + sizeof(float) * BQ * LDS;
    static constexpr size_t pv = o + sizeof(float) * BQ * LDO;
    static constexpr size_t alpha = pv + sizeof(float) * BQ * LDO;
    static constexpr size_t rowsum = alpha + sizeof(float) * BQ;
    static constexpr size_t pos = rowsum + sizeof(float) * BQ;
    static constexpr size_t bytes = pos + sizeof(int) * BQ;
    static_assert(k % 32 == 0 && v % 32 == 0 && p % 32 == 0 && s % 32 == 0 && o % 32 == 0 && pv % 32 == 0,
                  "WMMA needs 32-byte aligned tiles");
};

template <int D>
__global__ void __launch_bounds__(kThreads) attention_tc_kernel(AttentionParams p) {
    using Lo = Layout<D>;
    constexpr int LDH = Lo::LDH, LDP = Lo::LDP, LDS = Lo::LDS, LDO = Lo::LDO;
    constexpr int DV = D / 8; // 16-byte vectors per row
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *sQ = (bf16 *)(smem + Lo::q);
    bf16 *sK = (bf16 *)(smem + Lo::k);
    bf16 *sV = (bf16 *)(smem + Lo::v);
    bf16 *sP = (bf16 *)(smem + Lo::p);
    float *sS = (float *)(smem + Lo::s);
    float *sO = (float *)(smem + Lo::o);
    float *sPV = (float *)(smem + Lo::pv);
    float *sAlpha = (float *)(smem + Lo::alpha);
    float *sRowSum = (float *)(smem + Lo::rowsum);
    int *sPos = (int *)(smem + Lo::pos);

    const AttnTile tile = p.tiles[blockIdx.x];
    // Row r is token tile.tok_begin + r / G of query head head0 + r % G.
    const int G = p.stack_heads > 1 ? p.stack_heads : 1;
    const int head0 = p.stack_heads > 1 ? blockIdx.y * G : blockIdx.y;
    const int kv_head = p.stack_heads > 1 ? blockIdx.y : blockIdx.y / (p.n_head / p.n_head_kv);
    const int64_t q_stride = (int64_t)p.n_head * D, kv_stride = (int64_t)p.n_head_kv * D;
    const int nq = (tile.tok_end - tile.tok_begin) * G; // rows in use (<= BQ: the host cuts tiles so)
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int bs = p.block_size;
    const float scale_log2 = p.scale * 1.4426950408889634f;
    // Soft-capping (Gemma 2): score = softcap * tanh(q.k * scale / softcap).
    const bool capped = p.softcap > 0.f;
    const float cap_in = capped ? p.scale / p.softcap : 0.f, cap_log2 = p.softcap * 1.4426950408889634f;

    const bf16 *q = (const bf16 *)p.q;
    for (int i = tid; i < BQ * DV; i += kThreads) {
        const int r = i / DV, c = (i % DV) * 8;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (r < nq) v = *(const uint4 *)(q + (tile.tok_begin + r / G) * q_stride + (head0 + r % G) * D + c);
        *(uint4 *)(sQ + r * LDH + c) = v;
    }
    for (int i = tid; i < BQ; i += kThreads) sPos[i] = i < nq ? p.positions[tile.tok_begin + i / G] : -1;
    for (int i = tid; i < BQ * LDO; i += kThreads) sO[i] = 0.f;
    __syncthreads();

    int max_pos = -1, min_pos = INT_MAX;
    for (int i = 0; i < nq; ++i) {
        max_pos = max(max_pos, sPos[i]);
        min_pos = min(min_pos, sPos[i]);
    }
    const int n_keys = max_pos + 1;
    // As in attention.cu: keys before key_lo are outside every window of the
    // tile, and key tiles stay aligned to multiples of BK.
    const int key_lo = p.window > 0 ? max(0, min_pos - p.window + 1) : 0;

    // Softmax state: lanes 2j and 2j+1 share row j of this warp's 16.
    const int row = warp * 16 + (lane >> 1), half = lane & 1;
    const int my_pos = sPos[row];
    const int my_lo = p.window > 0 ? my_pos - p.window + 1 : 0;
    float m = kNegInf, l = 0.f;

    const bf16 *k_cache = (const bf16 *)p.k_cache, *v_cache = (const bf16 *)p.v_cache;
    const int32_t *table = p.block_indices + tile.blk_begin;

    for (int kb = key_lo / BK * BK; kb < n_keys; kb += BK) {
        __syncthreads(); // every warp is done with the previous sK and sV
        for (int i = tid; i < BK * DV; i += kThreads) {
            const int kk = i / DV, c = (i % DV) * 8;
            const int pos = kb + kk;
            uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0); // zeros: 0 * NaN is NaN
            if (pos >= key_lo && pos < n_keys) {
                const int64_t slot = (int64_t)table[pos / bs] * bs + pos % bs;
                kv = *(const uint4 *)(k_cache + slot * kv_stride + kv_head * D + c);
                vv = *(const uint4 *)(v_cache + slot * kv_stride + kv_head * D + c);
            }
            *(uint4 *)(sK + kk * LDH + c) = kv;
            *(uint4 *)(sV + kk * LDH + c) = vv;
        }
        __syncthreads();

        // S (16 x 64) = Q_w (16 x D) K^T: K row-major is K^T column-major.
        {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[BK / 16];
#pragma unroll
            for (int j = 0; j < BK / 16; ++j) wmma::fill_fragment(acc[j], 0.f);
#pragma unroll
            for (int k0 = 0; k0 < D; k0 += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> a;
                wmma::load_matrix_sync(a, sQ + warp * 16 * LDH + k0, LDH);
#pragma unroll
                for (int j = 0; j < BK / 16; ++j) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> b;
                    wmma::load_matrix_sync(b, sK + j * 16 * LDH + k0, LDH);
                    wmma::mma_sync(acc[j], a, b, acc[j]);
                }
            }
#pragma unroll
            for (int j = 0; j < BK / 16; ++j)
                wmma::store_matrix_sync(sS + warp * 16 * LDS + j * 16, acc[j], LDS, wmma::mem_row_major);
        }
        __syncwarp();

        // Online softmax over this tile, causal by absolute position.
        {
            const float *srow = sS + row * LDS + half * 32;
            float sv[32];
            float mx = kNegInf;
#pragma unroll
            for (int c = 0; c < 32; ++c) {
                float s = capped ? cap_log2 * tanhf(srow[c] * cap_in) : srow[c] * scale_log2;
                const int kpos = kb + half * 32 + c;
                if (kpos > my_pos || kpos < my_lo) s = kNegInf;
                sv[c] = s;
                mx = fmaxf(mx, s);
            }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            const float m_new = fmaxf(m, mx);
            const float base = m_new == kNegInf ? 0.f : m_new; // nothing visible yet: keep the state
            const float alpha = exp2f(m - base);
            float sum = 0.f;
            bf16 *prow = sP + row * LDP + half * 32;
#pragma unroll
            for (int c = 0; c < 32; ++c) {
                const bf16 pb = __float2bfloat16_rn(exp2f(sv[c] - base));
                prow[c] = pb;
                sum += __bfloat162float(pb);
            }
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            l = l * alpha + sum;
            m = m_new;
            if (half == 0) sAlpha[row] = alpha;
        }
        __syncwarp();

        // PV (16 x D) = P_w (16 x 64) V (64 x D), then O = O * alpha + PV.
        {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[D / 16];
#pragma unroll
            for (int j = 0; j < D / 16; ++j) wmma::fill_fragment(acc[j], 0.f);
#pragma unroll
            for (int k0 = 0; k0 < BK; k0 += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> a;
                wmma::load_matrix_sync(a, sP + warp * 16 * LDP + k0, LDP);
#pragma unroll
                for (int j = 0; j < D / 16; ++j) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> b;
                    wmma::load_matrix_sync(b, sV + k0 * LDH + j * 16, LDH);
                    wmma::mma_sync(acc[j], a, b, acc[j]);
                }
            }
#pragma unroll
            for (int j = 0; j < D / 16; ++j)
                wmma::store_matrix_sync(sPV + warp * 16 * LDO + j * 16, acc[j], LDO, wmma::mem_row_major);
        }
        __syncwarp();
        for (int i = lane; i < 16 * D; i += 32) {
            const int r = warp * 16 + i / D, c = i % D;
            sO[r * LDO + c] = sO[r * LDO + c] * sAlpha[r] + sPV[r * LDO + c];
        }
    }

    if (half == 0) sRowSum[row] = l;
    __syncwarp();
    bf16 *out = (bf16 *)p.out;
    for (int i = lane; i < 16 * D; i += 32) {
        const int r = warp * 16 + i / D, c = i % D;
        if (r >= nq) continue;
        // Every real query sees at least its own position, so its sum is > 0.
        out[(tile.tok_begin + r / G) * q_stride + (head0 + r % G) * D + c] =
            __float2bfloat16_rn(sO[r * LDO + c] / sRowSum[r]);
    }
}

template <int D> cudaError_t launch(const AttentionParams &p, cudaStream_t stream) {
    constexpr size_t smem = Layout<D>::bytes;
    cudaError_t err =
        cudaFuncSetAttribute(attention_tc_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (err != cudaSuccess) return err;
    const int heads = p.stack_heads > 1 ? p.n_head_kv : p.n_head; // work items per tile
    attention_tc_kernel<D><<<dim3(p.n_tiles, heads), kThreads, smem, stream>>>(p);
    return cudaGetLastError();
}

} // namespace

cudaError_t paged_attention_tc(const AttentionParams &p, cudaStream_t stream) {
    if (p.head_dim == 64) return launch<64>(p, stream);
    if (p.head_dim == 128) return launch<128>(p, stream);
    return cudaErrorInvalidValue;
}

} // namespace lmscore_cuda
