// attention_tc.cu — the bf16 paged attention on tensor cores, FlashAttention-2
// style, for head_dim 64 and 128. Same contract as the SIMT kernel in
// attention.cu, which serves every other case and is the reference this one
// is tested beside.
//
// Block: 4 warps of MT m16 row blocks, kAttnTileQTc = 64 MT query rows,
// one head; or, with head stacking (AttentionParams::stack_heads = G > 1),
// up to kAttnTileQTc / G tokens x the G query heads of one kv head, row r =
// (token r / G, head r % G), so a segment of a few tokens still fills the
// tile and its keys are read once for the G heads. A work item may also be
// a group (AttnGroup: tiles of several segments whose block tables start
// with the same blocks, their rows concatenated, at most one tile's): the
// key tiles inside the common prefix are read once for all its rows, the
// rest member by member with the other members' rows masked. Q is loaded
// into shared memory once and kept in registers as mma fragments (with two
// row blocks at D = 128 it would be read again per key tile: O takes the
// registers). K and V tiles of 64 keys are gathered through the block table
// with cp.async into shared-memory stages (S), the next tile loading
// while the current one is computed. Per key tile, each warp, for each row
// block (every K and V fragment read from shared memory feeds all of them):
//   S (16 x 64) = Q K^T      mma.sync m16n8k16 bf16 -> fp32, in registers
//   masked online softmax     in registers; a row lives in the 4 lanes of a
//                             quad, its max combined with two shuffles; the
//                             mask is skipped when every row of the warp sees
//                             every key of the tile (it would change nothing);
//                             P = 2^(s exp_mul - base) in one FMA and ex2
//                             (exp_mul = scale log2 e, or 1 for soft-capped
//                             scores, which carry it), two P per conversion
//   O = O * alpha + P V       P rounded to bf16 in registers (the S
//                             accumulator layout is the A fragment layout);
//                             the rescale skipped when alpha is 1 for every
//                             row of the warp (O * 1 = O)
// Row sums add the rounded bf16 P that multiplies V, so the normalisation
// matches what was accumulated. Shared memory: (64 MT + 2 S 64) rows of
// D + 8 bf16 for S stages plus 2.7 KB of the rows' bookkeeping (85 KiB of
// rows for D = 128 with two stages, 63 KiB for 64 with three, at MT = 1):
// on sm_90, two blocks per SM at D = 128, three at 64 (registers).
//
// Batch invariance (a row's bits do not depend on the other rows of its
// tile nor on how many key tiles the tile visits):
//  1. Every element of S and of P V comes from one row of Q (or P) and one
//     column of K^T (or V) through the same fixed sequence of mma
//     instructions (k-steps in increasing order), whatever the row's place
//     in the tile; the softmax of a row reads only its own S values, and its
//     reductions (the quad max, the per-lane partial sums, the final quad
//     sum) run in an order fixed by column, not by row.
//  2. Key tiles start at a multiple of BK in absolute positions: at 0, or
//     with a window at the last multiple of BK at or before the work item's
//     earliest window start. The passes a row takes part in are the shared
//     ones and then its own member's, each in increasing order, and they
//     cover consecutive key tiles, so the tiles a row sees with at least one
//     visible key are the same tiles, with the same keys (a shared pass
//     reads the common prefix, the same blocks as the row's own table) in
//     the same columns, in every tile composition. A key a row does not see
//     may hold other data (zeros in one composition, another row's key in
//     another): it is masked to -inf whatever its score, so it gives P = +0.
//     In another member's passes the row is masked entirely.
//  3. A key tile with no key visible to a row is an exact no-op for it: its
//     scores are -inf, so m_new = m, alpha is set to exactly 1 (not
//     computed), P = exp2(-inf) = +0 (ex2.approx's rule for -inf), so
//     O * 1 + 0 * V = O (V is finite: keys outside the pass's range are
//     loaded as zeros, never as whatever the slot holds, and the keys in it
//     are written K/V) and l * 1 + 0 = l;
//     with m = -inf (nothing seen yet) that keeps the initial zeros. The
//     tiles before a row's window and after its position, which a tile
//     visits or skips depending on its other rows, therefore leave the row
//     unchanged, and a warp may skip a key tile none of its rows sees. For
//     the same reason the warp-wide vote that skips O * alpha when every
//     row's alpha is 1 changes no bit, though it depends on the other rows.
// Hence stacked and unstacked tiles, grouped and single tiles, cached and
// uncached runs, and any cut of a segment into tiles give the same bits for
// a row (attention_test.cu checks this bitwise).
#include <limits.h>
#include <stdint.h>

#include <type_traits>

#include "device_util.cuh"

namespace lmscore_cuda {

bool attention_tc_supports(int head_dim) { return head_dim == 64 || head_dim == 128; }

namespace {

using bf16 = __nv_bfloat16;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
// m16 row blocks per warp. Two (128-row tiles, each K/V fragment feeding
// two MMAs) was measured on the H200: +5% (D = 64) and +12% (D = 128) on
// 8 x 1024 causal tokens, but -15% to -40% where few rows read a long
// prefix (half the blocks, each twice as long) and -10% on gpt2-large's
// workloads (kernels/tests/results/h200-attention-rows-per-warp.log).
constexpr int MT = 1;
constexpr int BQ = kAttnTileQTc, BK = 64;
// Shared-memory stages of K/V tiles (S, a template argument). The next tile
// loads while the current one is computed; with two stages a barrier after
// the compute keeps the load from overwriting a tile a warp still reads,
// with three the stage loaded was last read two tiles ago, before the
// barrier every warp has since passed, so that barrier goes. The stage count
// changes no arithmetic, so no bits. The launch takes three where three
// blocks of them fit an SM (D = 64 on sm_90's 228 KB: 63 KiB of stages and
// Q each, plus the static arrays); elsewhere, and at D = 128, where three
// would cost the second block, two.
constexpr int kMaxStages = 3;
// Static shared memory of the kernel (the rows' and members' bookkeeping,
// 2.7 KB per ptxas) rounded up, and what the runtime reserves per block:
// the launch's fit test counts both.
constexpr size_t kStaticSmemBound = 4096, kSmemReservedPerBlock = 1024;
// Blocks per SM the register budget is cut for: D = 128 is held to two by
// shared memory anyway; D = 64 fits three in 168 registers without spills
// (with MT = 2 it would spill: two).
template <int D> constexpr int kMinBlocks = D == 64 && MT == 1 ? 3 : 2;
// Q fragments held in registers across key tiles, or read from shared
// memory per tile where O needs the registers (two row blocks at D = 128).
template <int D> constexpr bool kQInRegs = MT == 1 || D <= 64;
constexpr float kNegInf = -INFINITY;
constexpr float kLog2e = 1.4426950408889634f;
static_assert(BQ == kWarps * 16 * MT, "MT m16 row blocks per warp");

// Shared rows of D + 8 bf16 (a multiple of 16 bytes, for cp.async and
// ldmatrix): the 8 rows one ldmatrix phase reads start 4 banks apart, so
// they hit 32 distinct banks.
template <int D, int S> struct Layout {
    static_assert(S >= 2 && S <= kMaxStages, "two or three stages");
    static constexpr int LD = D + 8;
    static constexpr size_t q = 0;                                       // (BQ, LD)
    static constexpr size_t k = q + sizeof(bf16) * BQ * LD;        // (S, BK, LD)
    static constexpr size_t v = k + sizeof(bf16) * S * BK * LD;    // (S, BK, LD)
    static constexpr size_t bytes = v + sizeof(bf16) * S * BK * LD;
};

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

// 16 bytes global -> shared, bypassing L1; valid == false writes zeros and
// reads nothing.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool valid) {
    cp_async16(smem_addr(dst), src, valid);
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

// c (16 x 8, fp32) += a (16 x 16, bf16, row) b (16 x 8, bf16, col).
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x; 2^-inf = +0.
__device__ __forceinline__ float exp2_approx(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// Zeroes a warp's accumulator fragments (row blocks x n-tiles x 4 floats).
template <int R, int N> __device__ __forceinline__ void zero_frags(float (&c)[R][N][4]) {
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < N; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) c[r][j][e] = 0.f;
}

// v[0] = v[0] op v[1] op ... in a fixed pairwise order (N a power of two):
// a dependency chain of log2 N operations rather than N - 1.
template <int N, typename Op> __device__ __forceinline__ float tree_reduce(float (&v)[N], Op op) {
    static_assert((N & (N - 1)) == 0, "a power of two");
#pragma unroll
    for (int w = N / 2; w >= 1; w /= 2)
#pragma unroll
        for (int j = 0; j < w; ++j) v[j] = op(v[j], v[j + w]);
    return v[0];
}

// Scores of one m16 row block's S tile, in place: with kCapped soft-capped
// and in base 2 (cap log2 e tanh(q.k scale / cap)), else left as q.k, the
// softmax folding the factor scale log2 e into the exponent's FMA; with
// kMasked the keys a row does not see at -inf. mx[h] gets this lane's max of
// row h (g or g + 8). Element e of n-tile j: row g + 8 (e >> 1), key
// kb + 8 j + 2 t4 + (e & 1). Unmasked is used only when the mask would set
// nothing, so both give the same bits (a visible score takes the same
// operations in both); both choices are template arguments so that the loop
// holds neither the mask's tests nor tanhf where they do not apply.
template <bool kMasked, bool kCapped, int NS>
__device__ __forceinline__ void prepare_scores(float (&s)[NS][4], float (&mx)[2], int kb, int t4,
                                               const bool (&in_pass)[2], const int (&row_pos)[2],
                                               const int (&row_lo)[2], float cap_in, float cap_log2) {
#pragma unroll
    for (int j = 0; j < NS; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int h = e >> 1;
            float x = kCapped ? __fmul_rn(cap_log2, tanhf(__fmul_rn(s[j][e], cap_in))) : s[j][e];
            if (kMasked) {
                const int kpos = kb + 8 * j + 2 * t4 + (e & 1);
                if (!in_pass[h] || kpos > row_pos[h] || kpos < row_lo[h]) x = kNegInf;
            }
            s[j][e] = x;
        }
    // The max is exact in any order; a tree keeps its chain short.
    float m0[NS], m1[NS];
#pragma unroll
    for (int j = 0; j < NS; ++j) {
        m0[j] = fmaxf(s[j][0], s[j][1]);
        m1[j] = fmaxf(s[j][2], s[j][3]);
    }
    const auto max_op = [](float a, float b) { return fmaxf(a, b); };
    mx[0] = tree_reduce(m0, max_op);
    mx[1] = tree_reduce(m1, max_op);
}

// prepare_scores with its two choices made at run time (both uniform over
// the warp: all_visible by __all_sync, capped by the launch).
template <int NS>
__device__ __forceinline__ void prepare_scores(bool masked, bool capped, float (&s)[NS][4], float (&mx)[2], int kb,
                                               int t4, const bool (&in_pass)[2], const int (&row_pos)[2],
                                               const int (&row_lo)[2], float cap_in, float cap_log2) {
    if (masked && capped)
        prepare_scores<true, true>(s, mx, kb, t4, in_pass, row_pos, row_lo, cap_in, cap_log2);
    else if (masked)
        prepare_scores<true, false>(s, mx, kb, t4, in_pass, row_pos, row_lo, cap_in, cap_log2);
    else if (capped)
        prepare_scores<false, true>(s, mx, kb, t4, in_pass, row_pos, row_lo, cap_in, cap_log2);
    else
        prepare_scores<false, false>(s, mx, kb, t4, in_pass, row_pos, row_lo, cap_in, cap_log2);
}

template <int D, int S>
__global__ void __launch_bounds__(kThreads, kMinBlocks<D>) attention_tc_kernel(AttentionParams p) {
    using Lo = Layout<D, S>;
    constexpr int LD = Lo::LD;
    constexpr int CH = D / 8;   // 16-byte chunks per row
    constexpr int NS = BK / 8;  // n-tiles of S
    constexpr int NO = D / 8;   // n-tiles of O
    constexpr int KS = D / 16;  // k-steps of Q K^T
    static_assert(kThreads % CH == 0 && BK % (kThreads / CH) == 0, "each thread loads fixed columns");
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *sQ = (bf16 *)(smem + Lo::q);
    bf16 *sK = (bf16 *)(smem + Lo::k);
    bf16 *sV = (bf16 *)(smem + Lo::v);
    __shared__ int sPos[BQ], sTok[BQ], sMember[BQ]; // per row; -1 past the rows in use
    // Per member tile of the group: its first row (and one past the last),
    // first token, block table, keys [lo, keys) that its rows' windows and
    // positions span, first key tile and first pass of its own.
    __shared__ int sMemberRow[BQ + 1], sMemberTok[BQ], sMemberBlk[BQ], sMemberLo[BQ], sMemberKeys[BQ];
    __shared__ int sMemberKb[BQ], sPassStart[BQ + 1];

    // The work item: tiles [tile_begin, tile_end), their rows concatenated;
    // without groups, one tile.
    int tile_begin = blockIdx.x, tile_end = blockIdx.x + 1, shared_keys = 0;
    if (p.groups) {
        const AttnGroup group = p.groups[blockIdx.x];
        tile_begin = group.tile_begin;
        tile_end = group.tile_end;
        shared_keys = group.shared_keys;
    }
    const int n_members = tile_end - tile_begin; // <= BQ: each holds at least one row
    // Row r of member m is token sMemberTok[m] + (r - sMemberRow[m]) / G of
    // query head head0 + r % G (members start at multiples of G).
    const int G = p.stack_heads > 1 ? p.stack_heads : 1;
    const int head0 = p.stack_heads > 1 ? blockIdx.y * G : blockIdx.y;
    const int kv_head = p.stack_heads > 1 ? blockIdx.y : blockIdx.y / (p.n_head / p.n_head_kv);
    const int64_t q_stride = (int64_t)p.n_head * D, kv_stride = (int64_t)p.n_head_kv * D;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int bs = p.block_size;
    const int bs_shift = (bs & (bs - 1)) == 0 ? __ffs(bs) - 1 : -1; // log2(bs), or -1
    // Soft-capping (Gemma 2): score = softcap * tanh(q.k * scale / softcap).
    // The softmax runs in base 2: a capped score carries its factor log2(e)
    // (exp_mul 1), a plain q.k takes scale log2(e) in the exponent's FMA.
    const bool capped = p.softcap > 0.f;
    const float exp_mul = capped ? 1.f : p.scale * kLog2e;
    const float cap_in = capped ? p.scale / p.softcap : 0.f, cap_log2 = p.softcap * kLog2e;

    for (int m = tid; m < n_members; m += kThreads) {
        const AttnTile tile = p.tiles[tile_begin + m];
        sMemberRow[m + 1] = (tile.tok_end - tile.tok_begin) * G;
        sMemberTok[m] = tile.tok_begin;
        sMemberBlk[m] = tile.blk_begin;
        sMemberKeys[m] = -1;     // the member's highest position, until it becomes its keys
        sMemberLo[m] = INT_MAX;  // its lowest position, until it becomes its window's first key
    }
    __syncthreads();
    if (tid == 0) {
        sMemberRow[0] = 0;
        for (int m = 0; m < n_members; ++m) sMemberRow[m + 1] += sMemberRow[m];
    }
    __syncthreads();
    const int nq = sMemberRow[n_members]; // rows in use (<= BQ: the host cuts tiles and groups so)
    for (int r = tid; r < BQ; r += kThreads) {
        int m = 0;
        while (m + 1 < n_members && r >= sMemberRow[m + 1]) ++m;
        const bool used = r < nq;
        const int tok = used ? sMemberTok[m] + (r - sMemberRow[m]) / G : -1;
        const int pos = used ? p.positions[tok] : -1;
        sTok[r] = tok;
        sMember[r] = used ? m : -1;
        sPos[r] = pos;
        // Each member's range of positions, row by row at once (max and
        // min are the same in any order).
        if (used) {
            atomicMax(&sMemberKeys[m], pos);
            atomicMin(&sMemberLo[m], pos);
        }
    }
    __syncthreads();

    const bf16 *q = (const bf16 *)p.q;
    for (int i = tid; i < BQ * CH; i += kThreads) {
        const int r = i / CH, c = (i % CH) * 8;
        const bf16 *src = r < nq ? q + sTok[r] * q_stride + (head0 + r % G) * D + c : q;
        cp_async16(sQ + r * LD + c, src, r < nq);
    }

    // Every warp computes the group's range itself, from the BQ positions.
    int max_pos = -1, min_pos = INT_MAX;
    for (int r = lane; r < BQ; r += 32) {
        max_pos = max(max_pos, sPos[r]);
        if (r < nq) min_pos = min(min_pos, sPos[r]);
    }
    max_pos = __reduce_max_sync(0xffffffffu, max_pos);
    min_pos = __reduce_min_sync(0xffffffffu, min_pos);
    const int n_keys = max_pos + 1;
    // Keys before key_lo are outside every window of the rows: never read.
    const int key_lo = p.window > 0 ? max(0, min_pos - p.window + 1) : 0;
    const int kb0 = key_lo / BK * BK;
    // Passes over key tiles: first the shared ones, kb in [kb0, shared_end),
    // for all rows, reading member 0's table; then member by member, kb from
    // shared_end (or the member's own first key tile, if later) to the
    // member's keys, for that member's rows, reading its table and only the
    // keys its rows' windows reach (a window may hide keys the member's
    // cache no longer holds). A key tile is shared when every key it loads
    // (those below n_keys) lies in the common prefix; a group of one shares
    // all its key tiles.
    int shared_end = n_members == 1 || shared_keys >= n_keys ? (n_keys + BK - 1) / BK * BK : shared_keys / BK * BK;
    shared_end = max(shared_end, kb0);
    const int n_shared = (shared_end - kb0) / BK;
    if (tid == 0) {
        sPassStart[0] = n_shared;
        for (int m = 0; m < n_members; ++m) {
            const int keys = sMemberKeys[m] + 1, lo = p.window > 0 ? max(0, sMemberLo[m] - p.window + 1) : 0;
            sMemberKeys[m] = keys;
            sMemberLo[m] = lo;
            const int kb = max(shared_end, lo / BK * BK);
            sMemberKb[m] = kb;
            sPassStart[m + 1] = sPassStart[m] + (keys > kb ? (keys - kb + BK - 1) / BK : 0);
        }
    }
    __syncthreads();
    const int n_pass = sPassStart[n_members];
    // Pass t reads key tile kb for the rows of member (-1: all rows).
    auto pass_of = [&](int t, int &kb, int &member) {
        if (t < n_shared) {
            kb = kb0 + t * BK;
            member = -1;
            return;
        }
        int m = 0;
        while (t >= sPassStart[m + 1]) ++m;
        kb = sMemberKb[m] + (t - sPassStart[m]) * BK;
        member = m;
    };

    // Each thread loads one 16-byte column chunk of every kRowStep-th key
    // row: the column, the first row and the shared-memory addresses are
    // fixed, so a chunk costs its key's block lookup and two copies.
    constexpr int kRowStep = kThreads / CH, kChunks = BK / kRowStep;
    const int r0 = tid / CH, c0 = (tid % CH) * 8;
    const bf16 *k_col = (const bf16 *)p.k_cache + kv_head * D + c0;
    const bf16 *v_col = (const bf16 *)p.v_cache + kv_head * D + c0;
    const uint32_t sk0 = smem_addr(sK + r0 * LD + c0), sv0 = smem_addr(sV + r0 * LD + c0);
    // Keys outside [lo, hi) of the pass are masked for every row of the
    // pass; they are loaded as zeros, since 0 * NaN is NaN and a slot past
    // the table (or before a window) may hold anything. Their lookup reads
    // the table's first entry, which every table has.
    auto load_chunks = [&](auto pow2, const int32_t *table, int kb, int lo, int hi, uint32_t stage_off) {
#pragma unroll
        for (int k = 0; k < kChunks; ++k) {
            const int pos = kb + r0 + k * kRowStep;
            const bool ok = pos >= lo && pos < hi;
            const int pq = ok ? pos : 0;
            // A power-of-two block size (the default 16) takes a shift and
            // a mask rather than an integer division per chunk.
            const int blk = decltype(pow2)::value ? pq >> bs_shift : pq / bs;
            const int64_t off = ((int64_t)__ldg(table + blk) * bs + (pq - blk * bs)) * kv_stride;
            const uint32_t row_off = stage_off + (uint32_t)(k * kRowStep * LD * sizeof(bf16));
            cp_async16(sk0 + row_off, k_col + off, ok);
            cp_async16(sv0 + row_off, v_col + off, ok);
        }
    };
    auto load_kv = [&](int t, int stage) {
        int kb, member;
        pass_of(t, kb, member);
        const int32_t *table = p.block_indices + sMemberBlk[member < 0 ? 0 : member];
        const int lo = member < 0 ? key_lo : sMemberLo[member], hi = member < 0 ? n_keys : sMemberKeys[member];
        const uint32_t stage_off = (uint32_t)(stage * BK * LD * sizeof(bf16));
        if (bs_shift >= 0)
            load_chunks(std::true_type{}, table, kb, lo, hi, stage_off);
        else
            load_chunks(std::false_type{}, table, kb, lo, hi, stage_off);
    };

    if (n_pass > 0) load_kv(0, 0);
    cp_async_commit(); // group 0: Q and the first key tile

    // This thread's rows of row block mt: warp * 32 + 16 mt + g (h = 0) and
    // + 8 (h = 1); its columns of every n-tile: 2 t4 and 2 t4 + 1.
    const int g = lane >> 2, t4 = lane & 3;
    auto row_of = [&](int mt, int h) { return warp * 16 * MT + 16 * mt + g + 8 * h; };
    int row_pos[MT][2], row_lo[MT][2], row_member[MT][2];
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            row_pos[mt][h] = sPos[row_of(mt, h)];
            row_member[mt][h] = sMember[row_of(mt, h)];
            row_lo[mt][h] = p.window > 0 ? row_pos[mt][h] - p.window + 1 : INT_MIN;
            m[mt][h] = kNegInf;
            l[mt][h] = 0.f; // this lane's part of the row sum; the quad's parts join at the end
        }
    float o[MT][NO][4];
    zero_frags(o);
    uint32_t qf[MT][KS][4]; // used (and kept) only with kQInRegs<D>
    auto load_q = [&](uint32_t(&a)[4], int mt, int ks) {
        ldmatrix_x4(a, sQ + (warp * 16 * MT + 16 * mt + (lane & 15)) * LD + ks * 16 + (lane >> 4) * 8);
    };

    for (int t = 0; t < n_pass; ++t) {
        if (t + 1 < n_pass) load_kv(t + 1, (t + 1) % S);
        cp_async_commit(); // possibly empty, so that one wait count fits every iteration
        cp_async_wait<1>(); // key tile t (and Q) have landed
        __syncthreads();
        if (kQInRegs<D> && t == 0) {
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int ks = 0; ks < KS; ++ks) load_q(qf[mt][ks], mt, ks);
        }
        int kb, member;
        pass_of(t, kb, member);
        // A row takes part in the pass if it belongs to the pass's rows
        // (padding rows belong to none); a pass in which no row of a row
        // block sees a key is an exact no-op for all its 16 (3. above), so
        // the warp skips that block, or the pass if neither block sees one.
        // A row sees every key of the tile when the tile lies inside its
        // causal range and window; padding rows' results are never written.
        bool in_pass[MT][2], active[MT];
        bool all_visible = true;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            bool sees = false;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int pos = row_pos[mt][h];
                in_pass[mt][h] = pos >= 0 && (member < 0 || row_member[mt][h] == member);
                sees = sees || (in_pass[mt][h] && kb <= pos && kb + BK - 1 >= row_lo[mt][h]);
                all_visible = all_visible && (pos < 0 || (in_pass[mt][h] && kb + BK - 1 <= pos && kb >= row_lo[mt][h]));
            }
            active[mt] = __any_sync(0xffffffffu, sees);
        }
        all_visible = __all_sync(0xffffffffu, all_visible);
        bool any_active = false;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) any_active = any_active || active[mt];
        if (any_active) {
            const bf16 *k = sK + (t % S) * BK * LD, *v = sV + (t % S) * BK * LD;

            // S = Q K^T. K row-major is K^T column-major: plain ldmatrix gives
            // the B fragments of two n-tiles (keys n0..n0+15) per x4, which
            // both row blocks use.
            float s[MT][NS][4];
            zero_frags(s);
#pragma unroll
            for (int ks = 0; ks < KS; ++ks) {
                uint32_t a[MT][4];
                if constexpr (!kQInRegs<D>) {
#pragma unroll
                    for (int mt = 0; mt < MT; ++mt)
                        if (active[mt]) load_q(a[mt], mt, ks);
                }
#pragma unroll
                for (int np = 0; np < NS / 2; ++np) {
                    uint32_t b[4];
                    ldmatrix_x4(b, k + (np * 16 + (lane & 7) + ((lane >> 4) << 3)) * LD + ks * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        if (!active[mt]) continue;
                        const uint32_t(&af)[4] = kQInRegs<D> ? qf[mt][ks] : a[mt];
                        mma_bf16(s[mt][2 * np], af, b[0], b[1]);
                        mma_bf16(s[mt][2 * np + 1], af, b[2], b[3]);
                    }
                }
            }

            // Online softmax, causal (and windowed) by absolute position;
            // then P in bf16, packed as the A fragments of P V: k-step kk
            // covers n-tiles 2 kk and 2 kk + 1 of S.
            uint32_t pf[MT][BK / 16][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                if (!active[mt]) continue;
                float mx[2];
                prepare_scores(!all_visible, capped, s[mt], mx, kb, t4, in_pass[mt], row_pos[mt], row_lo[mt], cap_in,
                               cap_log2);
                // m is the running max in score units; base = m exp_mul, the
                // exponent of the rows' largest P. A P is 2^(s exp_mul -
                // base) in one FMA, the same instruction for every score of
                // every row, masked or not.
                float base[2], alpha[2];
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
                    mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
                    const float m_new = fmaxf(m[mt][h], mx[h]);
                    base[h] = m_new == kNegInf ? 0.f : __fmul_rn(m_new, exp_mul); // nothing visible yet: P = 0
                    // 1 when the max does not move, set rather than computed, so
                    // that a masked tile is a no-op whatever ex2.approx(0) gives;
                    // with nothing seen before, 2^-inf = 0.
                    alpha[h] = m_new == m[mt][h] ? 1.f : exp2_approx(__fmul_rn(m[mt][h], exp_mul) - base[h]);
                    m[mt][h] = m_new;
                }
                // Two P per conversion (cvt.rn.bf16x2.f32); the row sums add
                // the rounded values, read back from the packed halves, in a
                // fixed pairwise order (the pair, then a tree over n-tiles).
                float rs[2][NS];
#pragma unroll
                for (int j = 0; j < NS; ++j)
#pragma unroll
                    for (int h = 0; h < 2; ++h) {
                        const float p0 = exp2_approx(__fmaf_rn(s[mt][j][2 * h], exp_mul, -base[h]));
                        const float p1 = exp2_approx(__fmaf_rn(s[mt][j][2 * h + 1], exp_mul, -base[h]));
                        const __nv_bfloat162 pp = __floats2bfloat162_rn(p0, p1);
                        const uint32_t packed = *(const uint32_t *)&pp;
                        rs[h][j] = __uint_as_float(packed << 16) + __uint_as_float(packed & 0xffff0000u);
                        pf[mt][j / 2][(j & 1) * 2 + h] = packed;
                    }
                const auto add_op = [](float a, float b) { return a + b; };
#pragma unroll
                for (int h = 0; h < 2; ++h) l[mt][h] = l[mt][h] * alpha[h] + tree_reduce(rs[h], add_op);
                // O * 1 = O: a warp whose rows' maxima all stayed skips the
                // rescale, which in long rows is most key tiles.
                if (!__all_sync(0xffffffffu, alpha[0] == 1.f && alpha[1] == 1.f)) {
#pragma unroll
                    for (int j = 0; j < NO; ++j) {
                        o[mt][j][0] *= alpha[0];
                        o[mt][j][1] *= alpha[0];
                        o[mt][j][2] *= alpha[1];
                        o[mt][j][3] *= alpha[1];
                    }
                }
            }

            // O += P V. V row-major is the B operand row-major: ldmatrix.trans
            // gives the B fragments of two n-tiles (dims n0..n0+15) per x4,
            // which both row blocks use.
#pragma unroll
            for (int kk = 0; kk < BK / 16; ++kk)
#pragma unroll
                for (int dp = 0; dp < NO / 2; ++dp) {
                    uint32_t b[4];
                    ldmatrix_x4_trans(b, v + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + dp * 16 + (lane >> 4) * 8);
#pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        if (!active[mt]) continue;
                        mma_bf16(o[mt][2 * dp], pf[mt][kk], b[0], b[1]);
                        mma_bf16(o[mt][2 * dp + 1], pf[mt][kk], b[2], b[3]);
                    }
                }
        }
        if constexpr (S == 2) __syncthreads(); // every warp is done with this stage before it is loaded again
    }
    cp_async_wait<0>();

    bf16 *out = (bf16 *)p.out;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float sum = l[mt][h];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            const int r = row_of(mt, h);
            if (r >= nq) continue;
            // Every real query sees at least its own position, so its sum is > 0.
            // One division per row, then products: the row's output is
            // rounded to bf16 next, which dwarfs the product's extra ulp.
            const float inv = 1.f / sum;
            // "+ 0.f" turns -0 into +0: a masked key adds 0 * v, which may be -0,
            // and an O that is exactly zero could otherwise keep or lose its sign
            // depending on which masked tiles its tile visited.
            bf16 *orow = out + sTok[r] * q_stride + (head0 + r % G) * D + 2 * t4;
#pragma unroll
            for (int j = 0; j < NO; ++j)
                *(__nv_bfloat162 *)(orow + 8 * j) =
                    __floats2bfloat162_rn(o[mt][j][2 * h] * inv + 0.f, o[mt][j][2 * h + 1] * inv + 0.f);
        }
}

template <int D, int S> cudaError_t launch(const AttentionParams &p, cudaStream_t stream) {
    constexpr size_t smem = Layout<D, S>::bytes;
    // Opting in is per device and cheap; doing it per launch keeps
    // multi-device processes right without a cache keyed by device.
    cudaError_t err =
        cudaFuncSetAttribute(attention_tc_kernel<D, S>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (err == cudaSuccess)
        err = cudaFuncSetAttribute(attention_tc_kernel<D, S>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                   (int)cudaSharedmemCarveoutMaxShared);
    if (err != cudaSuccess) return err;
    const int heads = p.stack_heads > 1 ? p.n_head_kv : p.n_head; // work items per tile
    attention_tc_kernel<D, S><<<dim3(p.groups ? p.n_groups : p.n_tiles, heads), kThreads, smem, stream>>>(p);
    return cudaGetLastError();
}

// Three stages where kMinBlocks blocks of them fit the current device's
// shared memory per SM (attention_tc_stages); two elsewhere; or what a test
// forces, so that one device runs both.
template <int D> cudaError_t launch_staged(const AttentionParams &p, cudaStream_t stream) {
    int dev = 0, smem_per_sm = 0;
    cudaError_t err = cudaGetDevice(&dev);
    if (err == cudaSuccess) err = cudaDeviceGetAttribute(&smem_per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev);
    if (err != cudaSuccess) return err;
    const int stages = p.force_stages ? p.force_stages : attention_tc_stages(D, (size_t)smem_per_sm);
    return stages == 3 ? launch<D, 3>(p, stream) : launch<D, 2>(p, stream);
}

} // namespace

namespace {
template <int D> int stages_fitting(size_t smem_per_sm) {
    const size_t per_block = Layout<D, 3>::bytes + kStaticSmemBound + kSmemReservedPerBlock;
    return (size_t)kMinBlocks<D> * per_block <= smem_per_sm ? 3 : 2;
}
} // namespace

int attention_tc_stages(int head_dim, size_t smem_per_sm) {
    if (head_dim == 64) return stages_fitting<64>(smem_per_sm);
    if (head_dim == 128) return stages_fitting<128>(smem_per_sm);
    return 2;
}

cudaError_t paged_attention_tc(const AttentionParams &p, cudaStream_t stream) {
    if (p.head_dim == 64) return launch_staged<64>(p, stream);
    if (p.head_dim == 128) return launch_staged<128>(p, stream);
    return cudaErrorInvalidValue;
}

} // namespace lmscore_cuda
