// Per-token operations that cost little next to the matrix products: norms,
// RoPE. Plain scalar code with the norms' sums in double, as llama.cpp
// does; each token's result depends on its row alone.
#pragma once

#include <cstdint>

namespace lmscore {

// y = x / sqrt(mean(x^2) + eps) * w
void rms_norm(int64_t n, const float *x, const float *w, float eps, float *y);

// y = (x - mean) / sqrt(var + eps) * w + b (b may be null)
void layer_norm(int64_t n, const float *x, const float *w, const float *b, float eps, float *y);

// rope_inv_freq fills inv_freq[i] = scale * base^(-2i/n_rot) / freq_factors[i]
// for i < n_rot/2, in double; freq_factors may be null (all 1). scale is
// linear RoPE scaling: it multiplies the positions.
void rope_inv_freq(int n_rot, float base, float scale, const float *freq_factors, double *inv_freq);

// rope_angles fills cos_sin[2*i] = attn_factor * cos(theta_i) and
// cos_sin[2*i+1] = attn_factor * sin(theta_i) for theta_i = pos * inv_freq[i],
// i < n_rot/2, computed in double and rounded once. The angles depend on the
// position alone, so a token's rotation is the same in every batch and with
// or without the cache.
void rope_angles(int pos, int n_rot, const double *inv_freq, double attn_factor, float *cos_sin);

// rope_norm rotates consecutive pairs (2i, 2i+1), i < n_rot/2, of each of
// n_heads heads; rope_neox rotates pairs (i, i + n_rot/2). Values from n_rot
// to head_dim pass unrotated (partial rotary).
void rope_norm(float *x, int n_heads, int head_dim, int n_rot, const float *cos_sin);
void rope_neox(float *x, int n_heads, int head_dim, int n_rot, const float *cos_sin);

} // namespace lmscore
