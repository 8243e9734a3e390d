// abi.h — the lmscore C ABI as a table of function pointers, filled either
// from a dlopen'ed library (the CUDA core, as binding/ loads it) or from the
// functions linked into this program (the CPU core, when compiled in).
#pragma once

#include <dlfcn.h>

#include <string>
#include <type_traits>

#include "lmscore.h"

namespace lmscore_test {

// Each list entry has exactly the type of its declaration in lmscore.h.
#define LMSCORE_TEST_CHECK(ret, name, params)                                   \
    static_assert(std::is_same<decltype(&lmscore_##name), ret(*) params>::value, \
                  "LMSCORE_ABI_FUNCTIONS: lmscore_" #name " differs from its declaration");
LMSCORE_ABI_FUNCTIONS(LMSCORE_TEST_CHECK)
#undef LMSCORE_TEST_CHECK

struct Abi {
    std::string name;
#define LMSCORE_TEST_MEMBER(ret, name, params) ret(*name) params = nullptr;
    LMSCORE_ABI_FUNCTIONS(LMSCORE_TEST_MEMBER)
#undef LMSCORE_TEST_MEMBER

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
#define LMSCORE_TEST_SYMBOL(ret, name, params) sym(name, "lmscore_" #name);
        LMSCORE_ABI_FUNCTIONS(LMSCORE_TEST_SYMBOL)
#undef LMSCORE_TEST_SYMBOL
        return ok;
    }

#ifdef LMSCORE_WITH_CPU_CORE
    // The CPU core linked into this program.
    static Abi linked() {
        Abi a;
        a.name = "cpu core (linked)";
#define LMSCORE_TEST_LINKED(ret, name, params) a.name = lmscore_##name;
        LMSCORE_ABI_FUNCTIONS(LMSCORE_TEST_LINKED)
#undef LMSCORE_TEST_LINKED
        return a;
    }
#endif
};

} // namespace lmscore_test
