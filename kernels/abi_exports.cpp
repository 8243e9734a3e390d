// abi_exports.cpp — the shared library's one source of its own: everything
// else comes from the lmscore_cuda_core archive, linked whole so that every
// exported lmscore_* function is kept (a plain archive link would keep only
// what this file references, which is nothing).
#include "lmscore.h"
