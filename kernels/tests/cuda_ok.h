// cuda_ok.h — CUDA_OK(expr) for device test programs: a failing CUDA call in
// a test's own setup is a broken harness, not a test result, so it stops the
// program with the call and the error. (The library itself never exits.)
#pragma once

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define CUDA_OK(expr)                                                                                             \
    do {                                                                                                          \
        cudaError_t e_ = (expr);                                                                                  \
        if (e_ != cudaSuccess) {                                                                                  \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_));              \
            exit(2);                                                                                              \
        }                                                                                                         \
    } while (0)
