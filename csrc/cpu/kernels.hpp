// The hot loops of the CPU core, compiled once per instruction set
// (kernels_scalar.cpp, kernels_avx2.cpp, kernels_avx512.cpp) and picked at
// run time, so one binary runs on any x86-64 and uses what the CPU has.
//
// Batch invariance lives here. Every output element of a matrix product is
// one chain of fused multiply-adds over K in increasing order, started from
// zero, whatever the tile, row count or thread that computes it; attention
// scores are each such a chain over the head dimension; the softmax of a
// row and the weighted sum of values run over positions 0..p in position
// order, in a way that depends only on p. So a token's result never depends
// on which other tokens share its step or where its cached K/V came from.
#pragma once

#include <cstdint>

namespace lmscore {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

const char *isa_name(Isa isa);

// select_isa returns the best instruction set this CPU supports, or the one
// named by the environment variable LMSCORE_CPU_ISA ("scalar", "avx2",
// "avx512"), so that tests can exercise every path on one machine. Naming
// one the CPU lacks is an UNSUPPORTED error.
Isa select_isa();

// Weights are packed in panels of kPanel output columns: panel p holds, for
// every k, the kPanel values W[p*kPanel + j][k] contiguously (zero past N).
constexpr int kPanel = 32;

// The largest number of attention rows (tokens x query heads of one KV head)
// one attention tile handles.
constexpr int kAttnMaxRows = 32;
// Keys are gathered (transposed) in chunks of this many positions.
constexpr int kAttnKeyChunk = 128;

// AttnTile describes attention for a run of consecutive tokens of one
// sequence segment and the query heads of one KV head. Row r is token
// r / group, query head kv_head*group + r % group. The token at position p
// attends to positions max(0, p - window + 1) .. p (window 0: from 0).
struct AttnTile {
    int head_dim;
    int n_rows;
    int group;              // query heads per KV head
    int pos0;               // position of the tile's first token; token i is at pos0 + i
    const float *q;         // q of token 0, first query head of the group (RoPE applied)
    int64_t q_stride;       // floats between consecutive tokens' q
    float *out;             // output of token 0, first query head of the group
    int64_t out_stride;     // floats between consecutive tokens' outputs
    const float *k_base;    // K of this layer and KV head in block 0, [d][offset] (see kv.hpp)
    const float *v_base;    // V of this layer and KV head in block 0, [offset][d]
    int64_t block_stride;   // floats from one block to the next
    int block_size;
    const int32_t *blocks;  // the segment's block table, in position order
    float scale;            // multiplies q.k: 1/sqrt(head_dim) or the model's own
    float softcap;          // > 0: scores become softcap * tanh(score / softcap); 0: none
    int window;             // sliding window in positions; 0: none
};

// Scratch floats one attention tile needs for a longest key count n_keys.
int64_t attn_scratch_floats(int head_dim, int n_keys);

struct BlockType; // quant.hpp

struct Kernels {
    Isa isa;
    int mr; // rows of A per GEMM micro-tile

    // pack_a copies rows x kc of A (row stride lda) into strips of mr rows,
    // each laid out [k][mr], rows past `rows` zero. out holds
    // ceil(rows/mr)*mr*kc floats.
    void (*pack_a)(const float *a, int64_t lda, int rows, int kc, float *out);

    // gemm_tile: C[rows x kPanel] = (accumulate ? C : 0) + A_strip * B_panel,
    // each element a fused multiply-add chain over k = 0..kc-1. rows <= mr;
    // all kPanel columns of C are read and written (see gemm.cpp for edges).
    void (*gemm_tile)(int kc, const float *a, const float *b, float *c, int64_t ldc, int rows,
                      bool accumulate);

    // attention computes AttnTile rows into t.out; scratch holds
    // attn_scratch_floats(head_dim, pos0 + tokens) floats.
    void (*attention)(const AttnTile &t, float *scratch);

    // out[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + exp(-x)).
    void (*silu_mul)(int64_t n, const float *gate, const float *up, float *out);
    // out[i] = gelu(gate[i]) * up[i], gelu's tanh approximation (GeGLU).
    void (*gelu_mul)(int64_t n, const float *gate, const float *up, float *out);
    // out[i] = gelu(x[i]), the tanh approximation GPT-2 and llama.cpp use.
    void (*gelu)(int64_t n, const float *x, float *out);
    // out[i] = x[i] * (1 + erf(x[i] / sqrt 2)) / 2, the exact GELU (GPT-NeoX).
    void (*gelu_erf)(int64_t n, const float *x, float *out);
    // x[i] = c * tanh(x[i] / c) in place (Gemma 2's soft-capping), c > 0.
    void (*softcap)(int64_t n, float *x, float c);
    // sum_exp returns the sum over i of exp(x[i] - max), in a fixed order.
    float (*sum_exp)(int64_t n, const float *x, float max);
    // row_max returns the largest of x[0..n) (n >= 1); exact in any order.
    float (*row_max)(int64_t n, const float *x);

    // dequant decodes n_blocks whole blocks of type (any of quant.hpp's,
    // F32/F16/BF16 one value per block) from src into out, bit for bit the
    // values of quant.cpp's decoders, which are GGML's and gguf-py's. The
    // scalar table calls those decoders; the vector ones must equal them.
    void (*dequant)(const BlockType &type, const uint8_t *src, int64_t n_blocks, float *out);
    // transpose_panel: out[i * kPanel + j] = in[j * ld + i] for j < kPanel,
    // i < n: kPanel rows decoded one after the other into panel layout.
    void (*transpose_panel)(const float *in, int64_t ld, int n, float *out);
    // decode_panel writes n_blocks blocks of type of kPanel rows straight
    // in panel layout: out[i * kPanel + j] is value i of row j, whose
    // blocks start at rows + j * row_bytes (j * row_bytes fits int32_t).
    // The same bits as dequant and transpose_panel, with no transpose: a
    // vector holds one value of W rows. Returns false for a type without
    // such a decoder (the scalar table has none), writing nothing.
    bool (*decode_panel)(const BlockType &type, const uint8_t *rows, int64_t row_bytes, int64_t n_blocks,
                         float *out);
};

// kernels_for returns the table of an instruction set this CPU supports.
const Kernels &kernels_for(Isa isa);

namespace scalar { extern const Kernels kernels; }
#if defined(__x86_64__) || defined(_M_X64)
#define LMSCORE_HAVE_X86_KERNELS 1
namespace avx2 { extern const Kernels kernels; }
namespace avx512 { extern const Kernels kernels; }
#endif

} // namespace lmscore
