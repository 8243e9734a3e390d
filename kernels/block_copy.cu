// block_copy.cu — copy-on-write of KV blocks: the first n slots of one block into another.
#include "device_util.cuh"

namespace lmscore_cuda {
namespace {

// grid (n_copies, n_planes); a plane is one layer's K or V. Copies 4-byte
// words: a slot is slot_elems elements of 2 or 4 bytes, and slot_elems is
// even (head_dim is), so every slot starts on a word.
__global__ void block_copy_kernel(uint32_t *cache, int64_t plane_words, int block_size, int slot_words,
                                  const int32_t *src, const int32_t *dst, const int32_t *n_tok) {
    const int c = blockIdx.x;
    const int64_t block_words = (int64_t)block_size * slot_words;
    uint32_t *plane = cache + blockIdx.y * plane_words;
    const uint32_t *from = plane + src[c] * block_words;
    uint32_t *to = plane + dst[c] * block_words;
    const int64_t n = (int64_t)n_tok[c] * slot_words;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) to[i] = from[i];
}

} // namespace

cudaError_t block_copy(void *cache, DType dtype, int n_planes, int64_t plane_elems, int block_size,
                       int slot_elems, const int32_t *src, const int32_t *dst, const int32_t *n_tok,
                       int n_copies, cudaStream_t stream) {
    if (n_copies == 0 || n_planes == 0) return cudaSuccess;
    const int64_t esize = (int64_t)dtype_size(dtype);
    if ((slot_elems * esize) % 4 != 0) return cudaErrorInvalidValue;
    dim3 grid(n_copies, n_planes);
    block_copy_kernel<<<grid, 256, 0, stream>>>((uint32_t *)cache, plane_elems * esize / 4, block_size,
                                                (int)(slot_elems * esize / 4), src, dst, n_tok);
    return cudaGetLastError();
}

} // namespace lmscore_cuda
