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

// rope_inv_freq fills inv_freq[i] = base^(-2i/head_dim) / freq_factors[i]
// for i < head_dim/2, in double; freq_factors may be null (all 1).
void rope_inv_freq(int head_dim, float base, const float *freq_factors, double *inv_freq);

// rope_angles fills cos_sin[2*i] = cos(theta_i), cos_sin[2*i+1] = sin(theta_i)
// for theta_i = pos * inv_freq[i], i < head_dim/2, computed in double and
// rounded once. The angles depend on the position alone, so a token's
// rotation is the same in every batch and with or without the cache.
void rope_angles(int pos, int head_dim, const double *inv_freq, float *cos_sin);

// rope_norm rotates consecutive pairs (2i, 2i+1) of each of n_heads heads;
// rope_neox rotates pairs (i, i + head_dim/2).
void rope_norm(float *x, int n_heads, int head_dim, const float *cos_sin);
void rope_neox(float *x, int n_heads, int head_dim, const float *cos_sin);

} // namespace lmscore
