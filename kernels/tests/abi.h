// abi.h — the lmscore C ABI as a table of function pointers, filled either
// from a dlopen'ed library (the CUDA core, as binding/ loads it) or from the
// functions linked into this program (the CPU core, when compiled in).
#pragma once

#include <dlfcn.h>

#include <string>
#include <type_traits>

#include "lmscore.h"

namespace lmscore_test {

struct Abi {
    std::string name;
    const char *(*last_error)(void) = nullptr;
    int32_t (*abi_version)(void) = nullptr;
    const char *(*backend_name)(void) = nullptr;
    lmscore_backend_params (*backend_default_params)(void) = nullptr;
    lmscore_status (*model_load)(const lmscore_model_desc *, lmscore_backend_params, lmscore_model **) = nullptr;
    void (*model_free)(lmscore_model *) = nullptr;
    lmscore_status (*kv_block_bytes)(const lmscore_model *, int32_t, int64_t *) = nullptr;
    lmscore_status (*kv_init)(lmscore_model *, int32_t, int32_t, lmscore_kv **) = nullptr;
    void (*kv_free)(lmscore_kv *) = nullptr;
    lmscore_status (*step_init)(lmscore_model *, int32_t, int32_t, lmscore_step **) = nullptr;
    void (*step_free)(lmscore_step *) = nullptr;
    lmscore_status (*step_run)(lmscore_step *, lmscore_kv *, const lmscore_batch *, lmscore_batch_result *) = nullptr;

    // Loads path with RTLD_LOCAL, as binding/ does, so that its lmscore_*
    // symbols never interpose on (or get interposed by) this program's.
    bool open(const std::string &path, std::string *err) {
        void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            *err = dlerror();
            return false;
        }
        name = path;
        bool ok = true;
        auto sym = [&](auto &fn, const char *s) {
            fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, s));
            if (!fn) {
                ok = false;
                *err = std::string("missing symbol ") + s;
            }
        };
        sym(last_error, "lmscore_last_error");
        sym(abi_version, "lmscore_abi_version");
        sym(backend_name, "lmscore_backend_name");
        sym(backend_default_params, "lmscore_backend_default_params");
        sym(model_load, "lmscore_model_load");
        sym(model_free, "lmscore_model_free");
        sym(kv_block_bytes, "lmscore_kv_block_bytes");
        sym(kv_init, "lmscore_kv_init");
        sym(kv_free, "lmscore_kv_free");
        sym(step_init, "lmscore_step_init");
        sym(step_free, "lmscore_step_free");
        sym(step_run, "lmscore_step_run");
        return ok;
    }

#ifdef LMSCORE_WITH_CPU_CORE
    // The CPU core linked into this program.
    static Abi linked() {
        Abi a;
        a.name = "cpu core (linked)";
        a.last_error = lmscore_last_error;
        a.abi_version = lmscore_abi_version;
        a.backend_name = lmscore_backend_name;
        a.backend_default_params = lmscore_backend_default_params;
        a.model_load = lmscore_model_load;
        a.model_free = lmscore_model_free;
        a.kv_block_bytes = lmscore_kv_block_bytes;
        a.kv_init = lmscore_kv_init;
        a.kv_free = lmscore_kv_free;
        a.step_init = lmscore_step_init;
        a.step_free = lmscore_step_free;
        a.step_run = lmscore_step_run;
        return a;
    }
#endif
};

} // namespace lmscore_test
