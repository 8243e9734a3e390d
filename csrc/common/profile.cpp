#include "profile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace lmscore_common {

lmscore_status profile_env(bool *on, char *msg, size_t cap) {
    const char *v = getenv(kProfileEnv);
    *on = v && !strcmp(v, "1");
    if (v && *v && strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
        snprintf(msg, cap, "step: environment variable %s=%s: expected 1 (on) or 0 (off, the default)", kProfileEnv,
                 v);
        return LMSCORE_STATUS_INVALID_ARGUMENT;
    }
    return LMSCORE_STATUS_OK;
}

int PhaseTable::find(const char *name) {
    // Pointer equality first: a core passes the same literal every step.
    for (int i = 0; i < n_; ++i)
        if (names_[i] == name) return i;
    for (int i = 0; i < n_; ++i)
        if (!strcmp(names_[i], name)) return i;
    if (n_ < kMaxPhases - 1) {
        names_[n_] = name;
        ms_[n_] = 0;
        counts_[n_] = 0;
        return n_++;
    }
    // The last entry collects whatever does not fit, so that no time is lost.
    if (n_ == kMaxPhases - 1) {
        names_[n_] = "other phases";
        ms_[n_] = 0;
        counts_[n_] = 0;
        n_++;
    }
    return kMaxPhases - 1;
}

void PhaseTable::add(const char *name, double ms, int64_t count) {
    const int i = find(name);
    ms_[i] += ms;
    counts_[i] += count;
}

void PhaseTable::add_all(const PhaseTable &other) {
    for (int i = 0; i < other.n_; ++i) add(other.names_[i], other.ms_[i], other.counts_[i]);
}

double PhaseTable::total_ms() const {
    double t = 0;
    for (int i = 0; i < n_; ++i) t += ms_[i];
    return t;
}

void ProfileTotals::add(double step_wall_ms, const PhaseTable &step_host, const PhaseTable &step_phases) {
    std::lock_guard<std::mutex> lock(mu);
    steps++;
    wall_ms += step_wall_ms;
    host.add_all(step_host);
    phases.add_all(step_phases);
}

namespace {

// Writer appends to buf while it fits and counts every byte either way, so
// that one pass gives both the report and the size it needs.
struct Writer {
    char *buf;
    size_t cap, len = 0;

    void append(const char *fmt, ...) __attribute__((format(printf, 2, 3))) {
        va_list ap;
        va_start(ap, fmt);
        char *at = buf && len < cap ? buf + len : nullptr;
        const int n = vsnprintf(at, at ? cap - len : 0, fmt, ap);
        va_end(ap);
        if (n > 0) len += (size_t)n;
    }
    // A JSON string; phase names are the cores' literals, escaped anyway.
    void string(const char *s) {
        append("\"");
        for (; *s; ++s) {
            const unsigned char c = (unsigned char)*s;
            if (c == '"' || c == '\\')
                append("\\%c", c);
            else if (c < 0x20)
                append("\\u%04x", c);
            else
                append("%c", c);
        }
        append("\"");
    }
    void table(const char *key, const PhaseTable &t) {
        append(",\"%s\":[", key);
        for (int i = 0; i < t.size(); ++i) {
            append("%s{\"name\":", i ? "," : "");
            string(t.name(i));
            append(",\"ms\":%.6f,\"count\":%lld}", t.ms(i), (long long)t.count(i));
        }
        append("]");
    }
};

} // namespace

size_t profile_report(ProfileTotals *totals, const char *backend, const char *clock, char *buf, size_t cap) {
    Writer w{buf, cap};
    w.append("{\"backend\":");
    w.string(backend);
    if (!totals) {
        w.append(",\"enabled\":false}");
    } else {
        std::lock_guard<std::mutex> lock(totals->mu);
        w.append(",\"enabled\":true,\"clock\":");
        w.string(clock);
        w.append(",\"steps\":%lld,\"dropped_steps\":%lld,\"wall_ms\":%.6f", (long long)totals->steps,
                 (long long)totals->dropped, totals->wall_ms);
        w.table("host", totals->host);
        w.table("phases", totals->phases);
        w.append("}");
    }
    const size_t needed = w.len + 1;
    // All or nothing: a truncated report would be invalid JSON.
    if (buf && cap > 0 && needed > cap) buf[0] = '\0';
    return needed;
}

} // namespace lmscore_common
