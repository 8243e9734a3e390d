// Dequantization of GGML's block types (lmscore.h's lmscore_type) for the
// CPU core. A weight is its dequantized value, computed in fp32 exactly as
// GGML's dequantize_row_* and gguf-py's dequantize do (model/quant.go is the
// Go reference, tested against gguf-py): a product is rounded before the
// addition that follows it, never fused into one FMA.
#pragma once

#include <cstdint>

namespace lmscore {

// BlockType is one type's block: values and bytes per block (1 and 4 or 2
// for F32, F16, BF16) and the decoder of one block.
struct BlockType {
    int32_t type;
    int values, bytes;
    void (*decode)(const uint8_t *block, float *out);
};

// block_type returns type's entry; nullptr for a type lmscore.h lacks.
const BlockType *block_type(int32_t type);

// is_block_quant: a quantized type (Q4_0 .. IQ4_XS, Q8_0), not F32/F16/BF16.
bool is_block_quant(int32_t type);

// dequant_blocks decodes n_blocks consecutive blocks of type bt at src to
// out: the scalar reference, and the scalar table's Kernels::dequant (the
// AVX2 and AVX-512 decoders, kernels_dequant.inc, must equal it bitwise).
void dequant_blocks(const BlockType &bt, const uint8_t *src, int64_t n_blocks, float *out);

// dequant_range writes values [k0, k0 + n) of a row of type bt starting at
// row (k0 and n whole blocks) to out.
void dequant_range(const BlockType &bt, const uint8_t *row, int64_t k0, int64_t n, float *out);

} // namespace lmscore
