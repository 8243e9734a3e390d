// profile.cpp — the phase profiler (profile.h) and lmscore_profile_report.
#include "profile.h"

#include <mutex>

#include "internal.h"

namespace lmscore_cuda {

namespace {
double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}
} // namespace

StepProfile::~StepProfile() {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
    cudaGetLastError();
}

cudaError_t StepProfile::reserve(size_t n) {
    try {
        while (events_.size() < n) {
            cudaEvent_t e = nullptr;
            const cudaError_t err = cudaEventCreate(&e);
            if (err != cudaSuccess) return err;
            events_.push_back(e);
            names_.push_back(nullptr);
        }
    } catch (const std::bad_alloc &) {
        return cudaErrorMemoryAllocation;
    }
    return cudaSuccess;
}

void StepProfile::begin_call() {
    host_.clear();
    phases_.clear();
    used_ = 0;
    device_open_ = broken_ = false;
    call_open_ = true;
    start_ = last_ = Clock::now();
}

void StepProfile::host_lap(const char *name) {
    const Clock::time_point now = Clock::now();
    host_.add(name, ms_between(last_, now));
    last_ = now;
}

bool StepProfile::record(const char *name, cudaStream_t st) {
    if (broken_) return false;
    // A profiler that cannot record must not fail the step: it drops it.
    if (used_ == events_.size() && reserve(events_.size() * 2 + 64) != cudaSuccess) {
        cudaGetLastError();
        broken_ = true;
        return false;
    }
    if (cudaEventRecord(events_[used_], st) != cudaSuccess) {
        cudaGetLastError();
        broken_ = true;
        return false;
    }
    names_[used_++] = name;
    return true;
}

void StepProfile::begin_device(cudaStream_t st) {
    host_lap("pack inputs");
    device_open_ = record(nullptr, st);
}

void StepProfile::after(const char *what, cudaStream_t st) {
    if (device_open_) record(what, st);
}

void StepProfile::before_sync() {
    host_lap("launch");
    device_open_ = false;
}

void StepProfile::after_sync() {
    host_lap("sync");
    for (size_t i = 1; i < used_ && !broken_; ++i) {
        float ms = 0;
        if (cudaEventElapsedTime(&ms, events_[i - 1], events_[i]) != cudaSuccess) {
            cudaGetLastError();
            broken_ = true;
            break;
        }
        phases_.add(names_[i], ms);
    }
}

void StepProfile::end_call(bool ok) {
    host_lap("unpack results");
    if (!ok || broken_) return; // drop_open counts it
    call_open_ = false;
    totals_->add(ms_between(start_, last_), host_, phases_);
}

void StepProfile::drop_open() {
    if (!call_open_) return;
    call_open_ = false;
    std::lock_guard<std::mutex> lock(totals_->mu);
    totals_->dropped++;
}

lmscore_status profile_open(lmscore_step *s) {
    bool on = false;
    char msg[256];
    if (lmscore_common::profile_env(&on, msg, sizeof msg) != LMSCORE_STATUS_OK)
        return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "%s", msg);
    if (!on) return LMSCORE_STATUS_OK;
    try {
        {
            // Two steps of one model may be made on two threads.
            static std::mutex mu;
            std::lock_guard<std::mutex> lock(mu);
            if (!s->model->profile) s->model->profile.reset(new lmscore_common::ProfileTotals());
        }
        std::unique_ptr<StepProfile> p(new StepProfile(s->model->profile.get()));
        // A dense step records about a dozen events per layer.
        const cudaError_t err = p->reserve(16 * (size_t)s->model->hp.n_layer + 64);
        if (err != cudaSuccess) return cuda_fail(err, "creating the profiler's events");
        s->profile = std::move(p);
    } catch (const std::bad_alloc &) {
        return fail(LMSCORE_STATUS_OUT_OF_MEMORY, "step: out of host memory for the profiler");
    }
    return LMSCORE_STATUS_OK;
}

} // namespace lmscore_cuda

extern "C" {

LMSCORE_API lmscore_status lmscore_profile_report(const lmscore_model *model, char *buf, size_t cap,
                                                  size_t *needed) {
    lmscore_cuda::clear_error();
    if (!model || !needed)
        return lmscore_cuda::fail(LMSCORE_STATUS_INVALID_ARGUMENT, "lmscore_profile_report: model or needed is null");
    if (!buf && cap > 0)
        return lmscore_cuda::fail(LMSCORE_STATUS_INVALID_ARGUMENT, "lmscore_profile_report: buf is null, cap %zu",
                                  cap);
    *needed = lmscore_common::profile_report(model->profile.get(), "cuda", "cuda events on the step's stream", buf,
                                             cap);
    return LMSCORE_STATUS_OK;
}

} // extern "C"
