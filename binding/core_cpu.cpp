//go:build cgo

// cgo compiles only the files in a package's own directory, so this unity
// file pulls the CPU core in from csrc/.
#include "../csrc/cpu/api.cpp"
#include "../csrc/cpu/common.cpp"
#include "../csrc/cpu/gemm.cpp"
#include "../csrc/cpu/kernels.cpp"
#include "../csrc/cpu/kv.cpp"
#include "../csrc/cpu/model.cpp"
#include "../csrc/cpu/moe.cpp"
#include "../csrc/cpu/ops.cpp"
#include "../csrc/cpu/profile.cpp"
#include "../csrc/cpu/quant.cpp"
#include "../csrc/cpu/step.cpp"
#include "../csrc/cpu/threadpool.cpp"
#include "../csrc/cpu/tp.cpp"
#include "../csrc/cpu/validate.cpp"

// The C core's name of each layer role, for abienums_test.go's check that
// Go and C spell every GGUF tensor name alike (test use only).
extern "C" const char *lmscore_go_layer_role_name(int role) { return lmscore_common::layer_role_name(role); }

// The dequantization kernels' test and benchmark entry points (quantcheck.go).
#include "../csrc/cpu/quant_check.cpp"
// The tensor-parallel barrier's scenarios (tpcheck.go).
#include "../csrc/cpu/tp_check.cpp"
