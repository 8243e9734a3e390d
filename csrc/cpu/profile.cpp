#include "profile.hpp"

#include "model.hpp"

// The shared bookkeeping is compiled with the CPU core through this file,
// as validate.cpp brings in ../common/validate.cpp (every build that takes
// csrc/cpu/*.cpp gets it); the CUDA core compiles it itself.
#include "../common/profile.cpp"

namespace lmscore {

void StepProfile::begin() {
    host_.clear();
    phases_.clear();
    start_ = host_last_ = last_ = Clock::now();
    open_ = true;
}

void StepProfile::host(const char *name) {
    const Clock::time_point now = Clock::now();
    host_.add(name, ms(host_last_, now));
    host_last_ = last_ = now;
}

void StepProfile::phase(const char *name) {
    const Clock::time_point now = Clock::now();
    phases_.add(name, ms(last_, now));
    last_ = now;
}

void StepProfile::end() {
    host("compute");
    totals_->add(ms(start_, host_last_), host_, phases_);
    open_ = false;
}

void StepProfile::drop_open() {
    if (!open_) return;
    open_ = false;
    std::lock_guard<std::mutex> lock(totals_->mu);
    totals_->dropped++;
}

std::unique_ptr<StepProfile> make_step_profile(lmscore_model &m) {
    bool on = false;
    char msg[256];
    if (lmscore_common::profile_env(&on, msg, sizeof msg) != LMSCORE_STATUS_OK)
        throw Error(LMSCORE_STATUS_INVALID_ARGUMENT, msg);
    if (!on) return nullptr;
    std::lock_guard<std::mutex> lock(m.run_mu); // a step of this model may be running
    if (!m.profile) m.profile = std::make_unique<lmscore_common::ProfileTotals>();
    return std::make_unique<StepProfile>(m.profile.get());
}

} // namespace lmscore
