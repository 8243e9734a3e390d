package scheduler

import "math/bits"

// BlockHash identifies the content of a full KV block: the whole token
// prefix up to the block's end and the model namespace. The zero value means
// "no hash" (a partial block, or one never registered).
//
// Collisions: a false hit would silently score with the wrong K/V, so the
// hash is 128 bits wide: two 64-bit lanes, each a chain of strong bijective
// mixes (murmur3's fmix64) absorbing two tokens per round, seeded by the
// parent block's hash, the namespace and fixed constants. For N distinct
// blocks ever cached the chance of any collision is about N^2/2^129, far
// below hardware error rates for any pool a process can hold. It is not a
// cryptographic hash: token sequences crafted to collide are out of scope.
// hash/maphash is not used because its seed differs between processes and
// the hashes must be stable (plans are compared across runs in tests).
type BlockHash struct{ Hi, Lo uint64 }

// IsZero reports whether h is the absent hash.
func (h BlockHash) IsZero() bool { return h.Hi == 0 && h.Lo == 0 }

const (
	laneHiSeed = 0x243f6a8885a308d3 // digits of pi: arbitrary but fixed
	laneLoSeed = 0x13198a2e03707344
	laneLoMul  = 0x9e3779b97f4a7c15 // golden ratio: decorrelates the lanes
)

func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// NamespaceHash turns a namespace key (the model's identity and anything
// else that changes K/V, such as the precision) into the root of every
// chain, so that blocks of different models never match.
func NamespaceHash(key string) BlockHash {
	hi, lo := uint64(laneHiSeed), uint64(laneLoSeed)
	for i := 0; i < len(key); i++ {
		hi = fmix64(hi ^ uint64(key[i]))
		lo = fmix64(lo ^ uint64(key[i])*laneLoMul)
	}
	return finish(hi, lo, uint64(len(key)))
}

// AppendBlockHashes is the one place that chains block hashes: the planner
// names KV blocks with it, and anything else keyed by blocks of a prompt
// (the root package's OutputStore) calls it to get the same names. hashes
// holds the hashes of the first len(hashes) full blocks of tokens (none, to
// start from the root); AppendBlockHashes appends those of the full blocks
// of blockSize tokens after them and returns the extended slice. Block 0
// chains onto namespace (a NamespaceHash), block b onto block b-1, so a
// block's hash names the whole prefix through its end. A partial block at
// the end of tokens has no hash.
func AppendBlockHashes(hashes []BlockHash, namespace BlockHash, tokens []int32, blockSize int) []BlockHash {
	for b := len(hashes); (b+1)*blockSize <= len(tokens); b++ {
		parent := namespace
		if b > 0 {
			parent = hashes[b-1]
		}
		hashes = append(hashes, chainHash(parent, namespace, tokens[b*blockSize:(b+1)*blockSize]))
	}
	return hashes
}

// chainHash is H(parent, tokens, namespace): the hash of the block holding
// tokens whose prefix before it hashed to parent.
func chainHash(parent, namespace BlockHash, tokens []int32) BlockHash {
	hi := fmix64(parent.Hi ^ namespace.Lo ^ laneHiSeed)
	lo := fmix64(parent.Lo ^ namespace.Hi ^ laneLoSeed)
	i := 0
	for ; i+1 < len(tokens); i += 2 {
		w := uint64(uint32(tokens[i])) | uint64(uint32(tokens[i+1]))<<32
		hi = fmix64(hi ^ w)
		lo = fmix64(lo ^ w*laneLoMul)
	}
	if i < len(tokens) {
		w := uint64(uint32(tokens[i])) | 1<<63 // mark the odd tail
		hi = fmix64(hi ^ w)
		lo = fmix64(lo ^ w*laneLoMul)
	}
	return finish(hi, lo, uint64(len(tokens)))
}

func finish(hi, lo, n uint64) BlockHash {
	hi = fmix64(hi ^ n ^ bits.RotateLeft64(lo, 29))
	lo = fmix64(lo ^ n*laneLoMul ^ bits.RotateLeft64(hi, 31))
	if hi == 0 && lo == 0 {
		lo = 1 // keep the zero value free to mean "no hash"
	}
	return BlockHash{Hi: hi, Lo: lo}
}
