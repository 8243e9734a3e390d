// Package scheduler plans the work of scoring many (context, continuation)
// pairs: which tokens to compute, where their K/V go, which blocks to copy
// or reuse, and which positions to score, as a stream of steps in the C
// ABI's flat form (Batch, see csrc/include/lmscore.h). It is pure Go.
//
// The pieces:
//
//   - prefixtrie holds the requests' inputs (context + continuation minus
//     its last token, after lm-eval-harness's left truncation to MaxLen);
//     each distinct prefix is computed once. A scored token is an output
//     (trie position, target); equal outputs of different requests are one
//     row, routed to all of them (Step.RouteStart/RouteRequest/RouteToken).
//   - BlockPool is the KV cache's bookkeeping (blocks, reference counts, an
//     LRU free list (internal/lru), full blocks cached under the chained
//     hashes of AppendBlockHashes, which anything else keyed by prompt
//     blocks uses too, e.g. lmscore.OutputStore); one pool
//     lives as long as the native KV pool it mirrors, so a later plan reuses
//     the prefixes of an earlier one. A block is touched for the first time
//     only when no free one is left (BlockPool.Retain: when no empty one
//     is), so the cores' mapped K/V stays at the live high-water mark
//     unless a server asks to keep more prefixes.
//   - Planner walks the trie depth first and emits steps one at a time
//     (Next), so execution can start at once and memory stays bounded.
//
// What a plan guarantees (the tests check each by executing plans in a
// simulator that tracks what every KV slot holds):
//
//   - every requested log-probability is produced exactly once, read after
//     the right prefix, and routed to every request that asked for it; the
//     first continuation token's comes from the last context position,
//     which therefore always runs, with slot -1 when its K/V is cached;
//   - with KV blocks to spare (Stats.KVBlocksNoRecompute or more), every
//     unique token is computed exactly once; a partial block shared at a
//     branch point is copied for each extra branch (or taken over in place
//     by one), never recomputed;
//   - with less, branch points go "tight" (their later branches recompute
//     the shared head of the block), finished subtrees free their blocks,
//     and the LRU evicts cached ones; the plan completes as long as each
//     request alone fits (Stats.KVBlocksMin), else NewPlanner returns a
//     *BudgetError naming it;
//   - no step exceeds MaxBatchTokens tokens or MaxOutputs output rows; no
//     slot is read before it is written (in an earlier step, or earlier in
//     the same step: its K/V writes, then its copies, then its reads), nor
//     reused while a step that has not yet run still reads it; reference
//     counts return to zero.
//
// Steps run in order. Within a step the ABI runs, layer by layer, all K/V
// writes, then the block copies, then that layer's attention reads, so a
// segment may follow its parent in the same step, copy included, rather
// than wait for the next step (at the end of a plan such waits made tiny
// steps of their own, each streaming every weight). The planner keeps a
// few steps open (Window) and
// packs segments first-fit, so that a child waiting for its parent's last
// piece (a long edge split across steps) does not leave steps half empty.
//
// Long checks: go test ./scheduler -run '^$' -fuzz FuzzPlan (random tries,
// block sizes 1 to 64, tight and loose budgets), and
// LMSCORE_PLAN_MILLION=1 go test ./scheduler -run TestPlanMillion -v
// (1,000,000 requests; =unshared for the worst case).
package scheduler
