// profile.h — the CUDA core's phase profiler (lmscore.h,
// lmscore_profile_report). A step made with LMSCORE_PROFILE=1 holds one;
// otherwise lmscore_step::profile is null and every hook in step.cpp is a
// test of that pointer.
//
// Two clocks. The device's: an event is recorded on the step's stream
// after each launch the step checks (StepRunner::check), so the time
// between two consecutive events is the device's time for the launch
// between them, named as the step names that launch ("qkv gemm"), plus any
// wait for the host to issue it. One stream, so the phases tile the
// device's part of the step without overlap. The host's: consecutive laps
// through lmscore_step_run (validate, kv reserve, pack inputs, launch,
// sync, unpack results), which sum to the call's wall time; "launch" long
// beside the device's phases means the host cannot keep the device fed.
#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <vector>

#include "../csrc/common/profile.h"

struct lmscore_step;

namespace lmscore_cuda {

class StepProfile {
  public:
    explicit StepProfile(lmscore_common::ProfileTotals *totals) : totals_(totals) {}
    ~StepProfile();
    StepProfile(const StepProfile &) = delete;
    StepProfile &operator=(const StepProfile &) = delete;

    // reserve creates n events up front, so that a step of n launches
    // creates none.
    cudaError_t reserve(size_t n);

    // begin_call starts a step at lmscore_step_run's entry.
    void begin_call();
    // host_lap closes a lap of the host's time since the last one.
    void host_lap(const char *name);
    // begin_device closes the "pack inputs" lap and records the step's
    // first event, before its first copy.
    void begin_device(cudaStream_t st);
    // after records the event that ends the launch named what (ignored
    // outside begin_device .. before_sync).
    void after(const char *what, cudaStream_t st);
    // before_sync closes the "launch" lap: everything is queued.
    void before_sync();
    // after_sync closes the "sync" lap and reads the events' times.
    void after_sync();
    // end_call closes "unpack results" and adds the step to the model's
    // totals; a failed step (ok false) or one whose events failed is only
    // counted as dropped.
    void end_call(bool ok);
    // drop_open counts a call begun and never ended (it returned early) as dropped.
    void drop_open();

  private:
    using Clock = std::chrono::steady_clock;
    bool record(const char *name, cudaStream_t st);

    lmscore_common::ProfileTotals *totals_;
    lmscore_common::PhaseTable host_, phases_;
    Clock::time_point start_, last_;
    std::vector<cudaEvent_t> events_; // reused step after step
    std::vector<const char *> names_; // names_[i]: the launch events_[i] ends (0: the start)
    size_t used_ = 0;
    bool device_open_ = false, broken_ = false, call_open_ = false;
};

// ProfileCall begins a profiled call and, however it returns, leaves no
// call open: one that never reached end_call counts as dropped.
class ProfileCall {
  public:
    explicit ProfileCall(StepProfile *p) : p_(p) {
        if (p_) p_->begin_call();
    }
    ~ProfileCall() {
        if (p_) p_->drop_open();
    }
    ProfileCall(const ProfileCall &) = delete;
    ProfileCall &operator=(const ProfileCall &) = delete;

  private:
    StepProfile *p_;
};

// profile_open gives s its profiler when LMSCORE_PROFILE=1 (the model's
// totals made on first use); INVALID_ARGUMENT for a value other than "",
// "0" or "1".
lmscore_status profile_open(lmscore_step *s);

} // namespace lmscore_cuda
