// rope_kv.cu — q/k/v bias, rotary position embedding (full or partial, with
// frequency scale, factors and attention factor) and the K/V write into paged slots.
#include <stdint.h>

#include "device_util.cuh"

namespace lmscore_cuda {
namespace {

constexpr int kRopeThreads = 128;
constexpr int kMaxHalfDim = 128; // head_dim <= 256

// One block per token. All heads of a token share its position, so the
// block computes each pair's cos/sin once, in double (an fp32 angle loses
// ~1e-3 rad at position 8192), and applies them in fp32.
template <typename T, bool VEC>
__global__ void __launch_bounds__(kRopeThreads) rope_kv_kernel(RopeKVParams p) {
    // 16-byte aligned for the four-wide path's float4 reads.
    __shared__ __align__(16) float cos_s[kMaxHalfDim], sin_s[kMaxHalfDim];
    const int t = blockIdx.x;
    const int D = p.head_dim;
    const int q_dim = p.n_head * D, kv_dim = p.n_head_kv * D;
    const int qkv_dim = q_dim + 2 * kv_dim;
    const float *row = p.qkv + (int64_t)t * qkv_dim;
    const int pos = p.positions[t];
    const int slot = p.slots[t];

    // Partial rotary (GPT-NeoX, Phi-4-mini): the first n_rot values of a head
    // turn, the rest pass through.
    const int n_rot = p.rope == RopeKind::None ? 0 : (p.n_rot > 0 ? p.n_rot : D);
    const int rot_half = n_rot / 2;
    if (rot_half > 0) {
        const double scale = p.freq_scale > 0.f ? (double)p.freq_scale : 1.0;
        const float mscale = p.attn_factor > 0.f ? p.attn_factor : 1.f;
        for (int i = threadIdx.x; i < rot_half; i += blockDim.x) {
            double freq = pow((double)p.freq_base, -2.0 * i / n_rot) * scale;
            if (p.freq_factors) freq /= (double)p.freq_factors[i]; // as the CPU core's rope_inv_freq
            double s, c;
            sincos((double)pos * freq, &s, &c);
            // ggml_rope_ext's attn_factor scales cos and sin, not the result.
            cos_s[i] = (float)c * mscale;
            sin_s[i] = (float)s * mscale;
        }
        __syncthreads();
    }

    T *q_out = (T *)p.q_out + (int64_t)t * q_dim;
    T *k_out = slot >= 0 ? (T *)p.k_cache + (int64_t)slot * kv_dim : nullptr;
    T *v_out = slot >= 0 ? (T *)p.v_cache + (int64_t)slot * kv_dim : nullptr;
    const int n_rot_heads = p.n_head + (k_out ? p.n_head_kv : 0);
    // q heads then k heads are contiguous in qkv.
    auto dst_of = [&](int h) { return h < p.n_head ? q_out + h * D : k_out + (h * D - q_dim); };
    const float *bias = p.bias;

    if (VEC) {
        // Four values per work item, read and written with one load and one
        // store each; the arithmetic per value is the scalar path's.
        auto in4 = [&](int j) {
            float4 v = load4(row + j);
            if (bias) {
                const float4 b = load4(bias + j);
                v.x += b.x, v.y += b.y, v.z += b.z, v.w += b.w;
            }
            return v;
        };
        const int rq = rot_half / 4; // rot_half % 4 == 0 on this path
        for (int item = threadIdx.x; item < n_rot_heads * rq; item += blockDim.x) {
            const int h = item / rq, i = (item % rq) * 4, base = h * D;
            T *dst = dst_of(h);
            if (p.rope == RopeKind::Neox) {
                // pairs (i + k, i + k + rot_half), k = 0..3
                const float4 a = in4(base + i), b = in4(base + i + rot_half);
                const float4 c = *(const float4 *)&cos_s[i], sn = *(const float4 *)&sin_s[i];
                store4<T>(dst + i, a.x * c.x - b.x * sn.x, a.y * c.y - b.y * sn.y, a.z * c.z - b.z * sn.z,
                          a.w * c.w - b.w * sn.w);
                store4<T>(dst + i + rot_half, a.x * sn.x + b.x * c.x, a.y * sn.y + b.y * c.y,
                          a.z * sn.z + b.z * c.z, a.w * sn.w + b.w * c.w);
            } else {
                // pairs (2i + 2k, 2i + 2k + 1), k = 0..3: eight values
                const float4 a = in4(base + 2 * i), b = in4(base + 2 * i + 4);
                const float4 c = *(const float4 *)&cos_s[i], sn = *(const float4 *)&sin_s[i];
                store4<T>(dst + 2 * i, a.x * c.x - a.y * sn.x, a.x * sn.x + a.y * c.x, a.z * c.y - a.w * sn.y,
                          a.z * sn.y + a.w * c.y);
                store4<T>(dst + 2 * i + 4, b.x * c.z - b.y * sn.z, b.x * sn.z + b.y * c.z, b.z * c.w - b.w * sn.w,
                          b.z * sn.w + b.w * c.w);
            }
        }
        const int pq = (D - n_rot) / 4;
        for (int item = threadIdx.x; item < n_rot_heads * pq; item += blockDim.x) {
            const int h = item / pq, j = n_rot + (item % pq) * 4;
            const float4 v = in4(h * D + j);
            store4<T>(dst_of(h) + j, v.x, v.y, v.z, v.w);
        }
        if (v_out) {
            for (int j = threadIdx.x * 4; j < kv_dim; j += blockDim.x * 4) {
                const float4 v = in4(q_dim + kv_dim + j);
                store4<T>(v_out + j, v.x, v.y, v.z, v.w);
            }
        }
        return;
    }

    auto in = [&](int j) {
        float v = row[j];
        if (bias) v += bias[j];
        return v;
    };
    // q and k heads, one rotation pair per work item.
    for (int item = threadIdx.x; item < n_rot_heads * rot_half; item += blockDim.x) {
        const int h = item / rot_half, i = item % rot_half;
        int i0, i1;
        if (p.rope == RopeKind::Neox) {
            i0 = i;
            i1 = i + rot_half;
        } else {
            i0 = 2 * i;
            i1 = 2 * i + 1;
        }
        const int base = h * D;
        const float x0 = in(base + i0), x1 = in(base + i1);
        const float c = cos_s[i], s = sin_s[i];
        T *dst = dst_of(h);
        dst[i0] = from_f32<T>(x0 * c - x1 * s);
        dst[i1] = from_f32<T>(x0 * s + x1 * c);
    }
    // Both pair layouts rotate values 0..n_rot-1; the rest are copied.
    const int pass = D - n_rot;
    for (int item = threadIdx.x; item < n_rot_heads * pass; item += blockDim.x) {
        const int h = item / pass, j = n_rot + item % pass;
        dst_of(h)[j] = from_f32<T>(in(h * D + j));
    }
    if (v_out) {
        for (int j = threadIdx.x; j < kv_dim; j += blockDim.x) v_out[j] = from_f32<T>(in(q_dim + kv_dim + j));
    }
}

// Whether the four-wide path applies: whole groups of four values in every
// part of a head (n_rot % 8 == 0 makes rot_half and the pass-through part
// multiples of 4) and every pointer aligned to them.
bool rope_vec_ok(const RopeKVParams &p, int n_rot, size_t size) {
    return p.head_dim % 4 == 0 && n_rot % 8 == 0 && aligned(16, {p.qkv, p.bias}) &&
           aligned(4 * size, {p.q_out, p.k_cache, p.v_cache});
}

} // namespace

cudaError_t rope_kv_write(const RopeKVParams &p, DType dtype, cudaStream_t stream) {
    if (p.n_tokens == 0) return cudaSuccess;
    if (p.head_dim % 2 != 0 || p.head_dim / 2 > kMaxHalfDim || p.n_rot < 0 || p.n_rot % 2 != 0 ||
        p.n_rot > p.head_dim)
        return cudaErrorInvalidValue;
    const int n_rot = p.rope == RopeKind::None ? 0 : (p.n_rot > 0 ? p.n_rot : p.head_dim);
    LMSCORE_DISPATCH_DTYPE(dtype, T, {
        if (rope_vec_ok(p, n_rot, sizeof(T)))
            rope_kv_kernel<T, true><<<p.n_tokens, kRopeThreads, 0, stream>>>(p);
        else
            rope_kv_kernel<T, false><<<p.n_tokens, kRopeThreads, 0, stream>>>(p);
    });
    return cudaGetLastError();
}

} // namespace lmscore_cuda
