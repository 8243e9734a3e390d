// profile.h — the phase profiler's bookkeeping, shared by the CPU core
// (csrc/cpu) and the CUDA core (kernels/): time per named phase summed over
// a model's steps, and the JSON lmscore_profile_report() writes.
//
// Each core times its own phases (the CPU with the host clock, the CUDA
// core with events on its stream) and names them with string literals; a
// step's times go into a PhaseTable of its own and join the model's
// ProfileTotals once, at the end of the step, under the totals' lock.
//
// Fixed-size tables and no exceptions: a step never allocates for its
// profile, and the report is written into the caller's buffer.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <mutex>

#include "../include/lmscore.h"

namespace lmscore_common {

// The environment variable that turns the profiler on ("1"; "" or "0":
// off). Each core reads it once, at lmscore_step_init.
constexpr const char *kProfileEnv = "LMSCORE_PROFILE";

// profile_env reads kProfileEnv into *on. Any other value than "", "0" or
// "1" is INVALID_ARGUMENT with a message in msg, as the cores' other
// environment switches are: a typo must not silently measure nothing.
lmscore_status profile_env(bool *on, char *msg, size_t cap);

// PhaseTable sums milliseconds and counts per phase name, in the order the
// names were first seen (the order of a step). Names are compared by
// pointer first and then by content, and must outlive the table (string
// literals). Past kMaxPhases names, the rest add up under "other phases".
class PhaseTable {
  public:
    static constexpr int kMaxPhases = 64;

    void add(const char *name, double ms, int64_t count = 1);
    void add_all(const PhaseTable &other);
    void clear() { n_ = 0; }
    int size() const { return n_; }
    const char *name(int i) const { return names_[i]; }
    double ms(int i) const { return ms_[i]; }
    int64_t count(int i) const { return counts_[i]; }
    double total_ms() const;

  private:
    int find(const char *name);
    const char *names_[kMaxPhases];
    double ms_[kMaxPhases];
    int64_t counts_[kMaxPhases];
    int n_ = 0;
};

// ProfileTotals is one model's profile: every profiled step's time, in the
// core's two views of it. host: the host's time inside lmscore_step_run,
// cut into consecutive laps (their sum is wall_ms). phases: the computing
// phases of the steps (CUDA: the device's time between events on the
// step's stream; CPU: host time), which never overlap each other and lie
// inside the step's wall time, so wall_ms - their sum is what the step
// spent on anything else (the idle gaps of the device, on CUDA).
struct ProfileTotals {
    std::mutex mu; // steps on one model may finish on several threads (CUDA)
    int64_t steps = 0;
    int64_t dropped = 0; // steps profiled but not in the sums: they failed, or their timing did
    double wall_ms = 0;
    PhaseTable host, phases;

    // add joins one step's tables.
    void add(double step_wall_ms, const PhaseTable &step_host, const PhaseTable &step_phases);
};

// profile_report writes lmscore_profile_report()'s JSON (see lmscore.h) of
// totals (null: the profiler was off for every step of the model) into buf
// when it fits in cap bytes with its NUL, and returns the bytes it needs,
// NUL included. clock says how the phases were timed.
size_t profile_report(ProfileTotals *totals, const char *backend, const char *clock, char *buf, size_t cap);

} // namespace lmscore_common
