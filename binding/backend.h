/*
 * backend.h — a table of the lmscore.h entry points, so that binding/ calls
 * the CPU core linked into the binary and a CUDA library opened at run time
 * (which exports the same symbol names) through one code path.
 *
 * The lmscore_go_* wrappers each make one ABI call and, on failure, copy
 * lmscore_last_error() into the caller's buffer in the same crossing: the
 * message is thread-local and a goroutine may change OS threads between
 * two cgo calls.
 */
#ifndef LMSCORE_GO_BACKEND_H
#define LMSCORE_GO_BACKEND_H

#include <stddef.h>

#include "../csrc/include/lmscore.h"

/* One member per ABI function, named as in lmscore.h without the prefix. */
typedef struct lmscore_backend {
#define LMSCORE_GO_MEMBER(ret, name, params) ret(*name) params;
    LMSCORE_ABI_FUNCTIONS(LMSCORE_GO_MEMBER)
#undef LMSCORE_GO_MEMBER
} lmscore_backend;

/* The CPU core compiled into this binary. */
const lmscore_backend *lmscore_go_cpu_backend(void);

/* Opens a shared library that implements lmscore.h (RTLD_NOW|RTLD_LOCAL)
 * and checks its ABI version. NULL on failure, with a message in err. The
 * library stays loaded for the life of the process. */
const lmscore_backend *lmscore_go_open_backend(const char *path, char *err, size_t err_cap);

lmscore_status lmscore_go_model_load(const lmscore_backend *be, const lmscore_model_desc *desc,
                                     lmscore_backend_params params, lmscore_model **out,
                                     char *err, size_t err_cap);
lmscore_status lmscore_go_kv_block_bytes(const lmscore_backend *be, const lmscore_model *model,
                                         int32_t block_size, int64_t *out, char *err, size_t err_cap);
lmscore_status lmscore_go_kv_init(const lmscore_backend *be, lmscore_model *model, int32_t block_size,
                                  int32_t n_blocks, lmscore_kv **out, char *err, size_t err_cap);
lmscore_status lmscore_go_step_init(const lmscore_backend *be, lmscore_model *model, int32_t max_tokens,
                                    int32_t max_outputs, lmscore_step **out, char *err, size_t err_cap);
lmscore_status lmscore_go_step_run(const lmscore_backend *be, lmscore_step *step, lmscore_kv *kv,
                                   const lmscore_batch *batch, lmscore_batch_result *result,
                                   char *err, size_t err_cap);
lmscore_status lmscore_go_profile_report(const lmscore_backend *be, const lmscore_model *model, char *buf,
                                        size_t cap, size_t *needed, char *err, size_t err_cap);

lmscore_status lmscore_go_tp_group_create(const lmscore_backend *be, int32_t size, lmscore_tp_group **out, char *err,
                                         size_t err_cap);
void lmscore_go_tp_group_free(const lmscore_backend *be, lmscore_tp_group *g);

/* Calls through the table that take no error buffer. */
lmscore_backend_params lmscore_go_default_params(const lmscore_backend *be);
const char *lmscore_go_backend_name(const lmscore_backend *be);

/* Frees through the table (cgo cannot call a function pointer itself). */
void lmscore_go_model_free(const lmscore_backend *be, lmscore_model *m);
void lmscore_go_kv_free(const lmscore_backend *be, lmscore_kv *kv);
void lmscore_go_step_free(const lmscore_backend *be, lmscore_step *s);

#endif
