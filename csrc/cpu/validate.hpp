// The CPU core's side of the checks both cores share
// (csrc/common/validate.h): the same rules, as lmscore::Error.
#pragma once

#include "common.hpp"

struct lmscore_step;
struct lmscore_kv;

namespace lmscore {

// validate_batch checks b against the step and pool and returns the number
// of keys the longest attention row reads (the last position + 1).
int32_t validate_batch(lmscore_step &st, const lmscore_kv &kv, const lmscore_batch &b,
                       const lmscore_batch_result &res);

// validate_model_desc checks everything load_model will rely on.
void validate_model_desc(const lmscore_model_desc &d);

} // namespace lmscore
