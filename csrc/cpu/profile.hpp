// The CPU core's phase profiler (lmscore.h, lmscore_profile_report): host
// clock laps through a step, each closing the interval since the last one.
// A step holds one only when LMSCORE_PROFILE=1 at lmscore_step_init;
// otherwise every hook is a test of a null pointer.
#pragma once

#include <chrono>
#include <memory>

#include "../common/profile.h"

namespace lmscore {

class StepProfile {
  public:
    explicit StepProfile(lmscore_common::ProfileTotals *totals) : totals_(totals) {}

    // begin starts a step: its wall time and its first lap start now.
    void begin();
    // host closes a lap of the call's own bookkeeping (validation, ...).
    void host(const char *name);
    // phase closes a computing phase: the time since the last lap.
    void phase(const char *name);
    // end closes the step, the time since the last host lap as "compute",
    // and adds it to the model's totals.
    void end();
    // drop_open counts a step begun and never ended (it threw) as dropped.
    void drop_open();

  private:
    using Clock = std::chrono::steady_clock;
    static double ms(Clock::time_point a, Clock::time_point b) {
        return std::chrono::duration<double, std::milli>(b - a).count();
    }
    lmscore_common::ProfileTotals *totals_;
    lmscore_common::PhaseTable host_, phases_;
    Clock::time_point start_, host_last_, last_;
    bool open_ = false;
};

// make_step_profile returns the step's profiler when LMSCORE_PROFILE=1 (the
// model's totals made on first use), null when it is off; it throws Error
// on a bad value.
std::unique_ptr<StepProfile> make_step_profile(lmscore_model &m);

} // namespace lmscore
