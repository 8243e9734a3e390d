// tolerance.h — the one rule for how far a kernel's output may be from its
// float64 CPU reference, as a relative L2 error (test_util.h's Err.rel_l2).
//
// Every kernel computes in fp32 and rounds once where it stores its output
// (kernels.h), so the error has two parts:
//   - the rounding of the stored value: at most u(out) per element, hence at
//     most u(out) in relative L2 (its RMS is about u/2.4 for values spread
//     over a binade: 1.6e-3 for bf16, what the H100 logs show);
//   - the fp32 arithmetic before it: rounding errors of u(f32) each along
//     the longest chain of dependent fp32 additions into one output, n long,
//     which add up like a random walk, as sqrt(n) u(f32). A worst case would
//     grow as n u(f32), but that bound is hundreds of times what the GPUs
//     show and would let a TF32 GEMM (2^-11 per product, ~3e-4) pass.
//
//   tolerance(out, n) = kToleranceFactor * (u(out) + sqrt(n) * u(f32))
//
// u is the unit roundoff, half the gap between 1 and the next number:
// FLT_EPSILON / 2 = 2^-24 for fp32 (24 significant bits), 2^-8 for bf16
// (8 significant bits). kToleranceFactor = 2 covers one more rounding of the
// output's type on the way (the tensor-core attention rounds its softmax
// weights to bf16 before the P.V product: 2.1e-3 on the H100 against 1.7e-3
// for one rounding) and the few ulp of expf, tanhf and sincos, and keeps the
// bound at least 3.5x above every error the H100 logs show
// (kernels/tests/results/). At the test sizes it gives 7.8e-3 for bf16
// outputs (the fixed bound was 1e-2) and 2.4e-7 (elementwise) to 5.5e-6
// (a 2048-long norm) for fp32 ones (the fixed bound was 2e-5).
//
// n is 1 for an elementwise kernel. For a T-thread block reduction over m
// values, the chain is ceil(m / T) + log2(T) long, not m.
#pragma once

#include <math.h>

#include "kernels.h"

namespace lmscore_test {

constexpr double kToleranceFactor = 2;

// Half the gap between 1 and the next value of type t.
inline double unit_roundoff(lmscore_cuda::DType t) {
    return t == lmscore_cuda::DType::F32 ? ldexp(1.0, -24) : ldexp(1.0, -8);
}

// The largest relative L2 error accepted for an output of type out whose
// longest chain of fp32 additions is n long (see above).
inline double tolerance(lmscore_cuda::DType out, double n) {
    return kToleranceFactor * (unit_roundoff(out) + sqrt(n) * unit_roundoff(lmscore_cuda::DType::F32));
}

// The chain length of a block reduction over m values by `threads` threads:
// each thread's strided sum, then a tree.
inline double block_reduction_chain(double m, int threads) { return ceil(m / threads) + log2((double)threads); }

} // namespace lmscore_test
