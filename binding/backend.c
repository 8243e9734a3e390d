//go:build cgo

#include "backend.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each list entry has exactly the type of its declaration in lmscore.h. */
#define LMSCORE_GO_CHECK(ret, name, params)                                  \
    _Static_assert(_Generic(&lmscore_##name, ret(*) params: 1, default: 0), \
                   "LMSCORE_ABI_FUNCTIONS: lmscore_" #name " differs from its declaration");
LMSCORE_ABI_FUNCTIONS(LMSCORE_GO_CHECK)
#undef LMSCORE_GO_CHECK

static const lmscore_backend cpu_backend = {
#define LMSCORE_GO_LINKED(ret, name, params) lmscore_##name,
    LMSCORE_ABI_FUNCTIONS(LMSCORE_GO_LINKED)
#undef LMSCORE_GO_LINKED
};

const lmscore_backend *lmscore_go_cpu_backend(void) { return &cpu_backend; }

static void copy_error(const lmscore_backend *be, lmscore_status st, char *err, size_t err_cap) {
    if (st == LMSCORE_STATUS_OK || err == NULL || err_cap == 0) return;
    const char *msg = be->last_error();
    snprintf(err, err_cap, "%s", msg ? msg : "");
}

const lmscore_backend *lmscore_go_open_backend(const char *path, char *err, size_t err_cap) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        snprintf(err, err_cap, "%s", why ? why : "dlopen failed");
        return NULL;
    }
    lmscore_backend be;
    memset(&be, 0, sizeof be);
    struct {
        const char *name;
        void **slot;
    } syms[] = {
#define LMSCORE_GO_SYMBOL(ret, name, params) {"lmscore_" #name, (void **)&be.name},
        LMSCORE_ABI_FUNCTIONS(LMSCORE_GO_SYMBOL)
#undef LMSCORE_GO_SYMBOL
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].slot = dlsym(h, syms[i].name);
        if (*syms[i].slot == NULL) {
            snprintf(err, err_cap, "%s: missing symbol %s", path, syms[i].name);
            dlclose(h);
            return NULL;
        }
    }
    int32_t v = be.abi_version();
    if (v != LMSCORE_ABI_VERSION) {
        snprintf(err, err_cap, "%s: ABI version %d, this binary needs %d", path, (int)v,
                 LMSCORE_ABI_VERSION);
        dlclose(h);
        return NULL;
    }
    /* Never freed: CUDA runtimes do not take well to being unloaded, and
     * binding/ opens each library once per process. */
    lmscore_backend *out = (lmscore_backend *)malloc(sizeof be);
    if (out == NULL) {
        snprintf(err, err_cap, "%s: out of memory", path);
        return NULL;
    }
    *out = be;
    return out;
}

lmscore_status lmscore_go_model_load(const lmscore_backend *be, const lmscore_model_desc *desc,
                                     lmscore_backend_params params, lmscore_model **out,
                                     char *err, size_t err_cap) {
    lmscore_status st = be->model_load(desc, params, out);
    copy_error(be, st, err, err_cap);
    return st;
}

lmscore_status lmscore_go_kv_block_bytes(const lmscore_backend *be, const lmscore_model *model,
                                         int32_t block_size, int64_t *out, char *err, size_t err_cap) {
    lmscore_status st = be->kv_block_bytes(model, block_size, out);
    copy_error(be, st, err, err_cap);
    return st;
}

lmscore_status lmscore_go_kv_init(const lmscore_backend *be, lmscore_model *model, int32_t block_size,
                                  int32_t n_blocks, lmscore_kv **out, char *err, size_t err_cap) {
    lmscore_status st = be->kv_init(model, block_size, n_blocks, out);
    copy_error(be, st, err, err_cap);
    return st;
}

lmscore_status lmscore_go_step_init(const lmscore_backend *be, lmscore_model *model, int32_t max_tokens,
                                    int32_t max_outputs, lmscore_step **out, char *err, size_t err_cap) {
    lmscore_status st = be->step_init(model, max_tokens, max_outputs, out);
    copy_error(be, st, err, err_cap);
    return st;
}

lmscore_status lmscore_go_step_run(const lmscore_backend *be, lmscore_step *step, lmscore_kv *kv,
                                   const lmscore_batch *batch, lmscore_batch_result *result,
                                   char *err, size_t err_cap) {
    lmscore_status st = be->step_run(step, kv, batch, result);
    copy_error(be, st, err, err_cap);
    return st;
}

lmscore_status lmscore_go_profile_report(const lmscore_backend *be, const lmscore_model *model, char *buf,
                                        size_t cap, size_t *needed, char *err, size_t err_cap) {
    lmscore_status st = be->profile_report(model, buf, cap, needed);
    copy_error(be, st, err, err_cap);
    return st;
}

lmscore_status lmscore_go_tp_group_create(const lmscore_backend *be, int32_t size, lmscore_tp_group **out, char *err,
                                         size_t err_cap) {
    lmscore_status st = be->tp_group_create(size, out);
    copy_error(be, st, err, err_cap);
    return st;
}

void lmscore_go_tp_group_free(const lmscore_backend *be, lmscore_tp_group *g) { be->tp_group_free(g); }
void lmscore_go_model_free(const lmscore_backend *be, lmscore_model *m) { be->model_free(m); }
void lmscore_go_kv_free(const lmscore_backend *be, lmscore_kv *kv) { be->kv_free(kv); }
void lmscore_go_step_free(const lmscore_backend *be, lmscore_step *s) { be->step_free(s); }
lmscore_backend_params lmscore_go_default_params(const lmscore_backend *be) {
    return be->backend_default_params();
}
const char *lmscore_go_backend_name(const lmscore_backend *be) { return be->backend_name(); }
