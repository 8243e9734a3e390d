// Constants of the exp polynomial every instruction set uses (Cephes expf):
// exp(x) = 2^n * p(r), n = round(x / ln 2), r = x - n ln 2 split in two
// parts for accuracy. About 1 ulp on [-87.3, 88]; below that it returns 0,
// above it saturates at exp(88). Each kernel set computes it with the same
// operations in the same order, lane by lane.
#pragma once

namespace lmscore {
namespace exp_poly {
constexpr float kHi = 88.0f;
constexpr float kLo = -87.3f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f;
constexpr float kP1 = 1.3981999507e-3f;
constexpr float kP2 = 8.3334519073e-3f;
constexpr float kP3 = 4.1665795894e-2f;
constexpr float kP4 = 1.6666665459e-1f;
constexpr float kP5 = 5.0000001201e-1f;
} // namespace exp_poly
} // namespace lmscore
