// rope_kv.cu — q/k/v bias, rotary position embedding (full or partial, with
// frequency scale, factors and attention factor) and the K/V write into paged slots.
#include "device_util.cuh"

namespace lmscore_cuda {
namespace {

constexpr int kRopeThreads = 128;
constexpr int kMaxHalfDim = 128; // head_dim <= 256

// One block per token. All heads of a token share its position, so the
// block computes each pair's cos/sin once, in double (an fp32 angle loses
// ~1e-3 rad at position 8192), and applies them in fp32.
template <typename T>
__global__ void __launch_bounds__(kRopeThreads) rope_kv_kernel(RopeKVParams p) {
    __shared__ float cos_s[kMaxHalfDim], sin_s[kMaxHalfDim];
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

    auto in = [&](int j) {
        float v = row[j];
        if (p.bias) v += p.bias[j];
        return v;
    };
    T *q_out = (T *)p.q_out + (int64_t)t * q_dim;
    T *k_out = slot >= 0 ? (T *)p.k_cache + (int64_t)slot * kv_dim : nullptr;
    T *v_out = slot >= 0 ? (T *)p.v_cache + (int64_t)slot * kv_dim : nullptr;
    const int n_rot_heads = p.n_head + (k_out ? p.n_head_kv : 0);
    // q heads then k heads are contiguous in qkv.
    auto dst_of = [&](int h) { return h < p.n_head ? q_out + h * D : k_out + (h * D - q_dim); };

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

} // namespace

cudaError_t rope_kv_write(const RopeKVParams &p, DType dtype, cudaStream_t stream) {
    if (p.n_tokens == 0) return cudaSuccess;
    if (p.head_dim % 2 != 0 || p.head_dim / 2 > kMaxHalfDim || p.n_rot < 0 || p.n_rot % 2 != 0 ||
        p.n_rot > p.head_dim)
        return cudaErrorInvalidValue;
    LMSCORE_DISPATCH_DTYPE(dtype, T, rope_kv_kernel<T><<<p.n_tokens, kRopeThreads, 0, stream>>>(p));
    return cudaGetLastError();
}

} // namespace lmscore_cuda
