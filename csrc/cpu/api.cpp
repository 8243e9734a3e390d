// The C ABI of lmscore.h for the CPU core. Every entry point catches
// everything: an Error becomes its status, std::bad_alloc becomes
// OUT_OF_MEMORY, anything else INTERNAL, always with a message.
#include <new>

#include "common.hpp"
#include "kv.hpp"
#include "model.hpp"
#include "step.hpp"
#include "tp.hpp"

namespace lmscore {
const char *get_last_error();
}

namespace {

template <typename Fn> lmscore_status guard(const char *op, Fn &&fn) {
    lmscore::set_last_error("");
    try {
        fn();
        return LMSCORE_STATUS_OK;
    } catch (const lmscore::Error &e) {
        lmscore::set_last_error(e.what());
        return e.status();
    } catch (const std::bad_alloc &) {
        std::string msg = std::string(op) + ": out of host memory";
        lmscore::set_last_error(msg.c_str());
        return LMSCORE_STATUS_OUT_OF_MEMORY;
    } catch (const std::exception &e) {
        std::string msg = std::string(op) + ": internal error: " + e.what();
        lmscore::set_last_error(msg.c_str());
        return LMSCORE_STATUS_INTERNAL;
    } catch (...) {
        std::string msg = std::string(op) + ": internal error";
        lmscore::set_last_error(msg.c_str());
        return LMSCORE_STATUS_INTERNAL;
    }
}

void need_arg(const void *p, const char *op, const char *name) {
    if (p == nullptr) lmscore::fail(LMSCORE_STATUS_INVALID_ARGUMENT, "%s: %s is NULL", op, name);
}

} // namespace

extern "C" {

const char *lmscore_last_error(void) { return lmscore::get_last_error(); }

int32_t lmscore_abi_version(void) { return LMSCORE_ABI_VERSION; }

const char *lmscore_backend_name(void) { return "cpu"; }

lmscore_backend_params lmscore_backend_default_params(void) {
    lmscore_backend_params p;
    p.n_threads = 0;
    p.device = 0;
    p.precision = LMSCORE_PRECISION_FP32;
    p.tp_group = nullptr;
    p.tp_rank = 0;
    return p;
}

lmscore_status lmscore_tp_group_create(int32_t size, lmscore_tp_group **out) {
    return guard("tp_group_create", [&] {
        need_arg(out, "tp_group_create", "out");
        *out = nullptr;
        if (size < 1 || size > 64)
            lmscore::fail(LMSCORE_STATUS_INVALID_ARGUMENT, "tp_group_create: size %d outside [1, 64]", int(size));
        *out = new lmscore_tp_group(size);
    });
}

void lmscore_tp_group_free(lmscore_tp_group *group) { delete group; }

lmscore_status lmscore_model_load(const lmscore_model_desc *desc, lmscore_backend_params params,
                                  lmscore_model **out) {
    return guard("model_load", [&] {
        need_arg(desc, "model_load", "desc");
        need_arg(out, "model_load", "out");
        *out = nullptr;
        *out = lmscore::load_model(*desc, params).release();
    });
}

void lmscore_model_free(lmscore_model *model) { delete model; }

lmscore_status lmscore_kv_block_bytes(const lmscore_model *model, int32_t block_size,
                                      int64_t *out_bytes) {
    return guard("kv_block_bytes", [&] {
        need_arg(model, "kv_block_bytes", "model");
        need_arg(out_bytes, "kv_block_bytes", "out_bytes");
        if (block_size <= 0)
            lmscore::fail(LMSCORE_STATUS_INVALID_ARGUMENT, "kv_block_bytes: block_size %d, want > 0",
                          int(block_size));
        int64_t floats = lmscore::checked_mul(lmscore::kv_block_floats(model->hp, block_size),
                                              model->hp.n_layer, "KV block");
        *out_bytes = lmscore::checked_mul(floats, int64_t(sizeof(float)), "KV block");
    });
}

lmscore_status lmscore_kv_init(lmscore_model *model, int32_t block_size, int32_t n_blocks,
                               lmscore_kv **out) {
    return guard("kv_init", [&] {
        need_arg(model, "kv_init", "model");
        need_arg(out, "kv_init", "out");
        *out = nullptr;
        *out = lmscore::make_kv(*model, block_size, n_blocks).release();
    });
}

void lmscore_kv_free(lmscore_kv *kv) { delete kv; }

lmscore_status lmscore_step_init(lmscore_model *model, int32_t max_tokens, int32_t max_outputs,
                                 lmscore_step **out) {
    return guard("step_init", [&] {
        need_arg(model, "step_init", "model");
        need_arg(out, "step_init", "out");
        *out = nullptr;
        *out = lmscore::make_step(*model, max_tokens, max_outputs).release();
    });
}

void lmscore_step_free(lmscore_step *step) { delete step; }

lmscore_status lmscore_step_run(lmscore_step *step, lmscore_kv *kv, const lmscore_batch *batch,
                                lmscore_batch_result *result) {
    return guard("step_run", [&] {
        need_arg(step, "step_run", "step");
        if (!kv || !batch || !result) {
            // The other ranks of a split model wait for this one at the start.
            lmscore_tp_group *g = step->model->tp;
            lmscore_common::TpPassage(g ? &g->barrier : nullptr, step->model->tp_rank).failed("a NULL argument");
        }
        need_arg(kv, "step_run", "kv");
        need_arg(batch, "step_run", "batch");
        need_arg(result, "step_run", "result");
        lmscore::run_step(*step, *kv, *batch, *result);
    });
}

lmscore_status lmscore_profile_report(const lmscore_model *model, char *buf, size_t cap, size_t *needed) {
    return guard("profile_report", [&] {
        need_arg(model, "profile_report", "model");
        need_arg(needed, "profile_report", "needed");
        if (!buf && cap > 0) lmscore::fail(LMSCORE_STATUS_INVALID_ARGUMENT, "profile_report: buf is NULL, cap %zu", cap);
        *needed = lmscore_common::profile_report(model->profile.get(), "cpu", "host steady_clock", buf, cap);
    });
}

} // extern "C"
