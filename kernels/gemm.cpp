// gemm.cpp — the linear layers through cuBLAS.
#include "internal.h"

namespace lmscore_cuda {

cublasStatus_t gemm(cublasHandle_t handle, DType dtype, const void *W, const void *X, void *Y, DType y_type,
                    int n_rows, int n_in, int n_out) {
    if (n_rows == 0) return CUBLAS_STATUS_SUCCESS;
    // cuBLAS is column-major. Row-major Y (n_rows, n_out) is column-major
    // Y^T (n_out, n_rows) = W X^T; row-major W (n_out, n_in) read column-major
    // is W^T, hence OP_T, and row-major X read column-major is X^T.
    const float alpha = 1.f, beta = 0.f;
    const cudaDataType_t ab = dtype == DType::F32 ? CUDA_R_32F : CUDA_R_16BF;
    const cudaDataType_t c = y_type == DType::F32 ? CUDA_R_32F : CUDA_R_16BF;
    // CUBLAS_COMPUTE_32F without the TF32 math mode is plain fp32 for fp32
    // inputs, and fp32 accumulation for bf16 inputs.
    return cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n_out, n_rows, n_in, &alpha, W, ab, n_in, X, ab, n_in,
                        &beta, Y, c, n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

} // namespace lmscore_cuda
