#define BOOST_TEST_MODULE gram_kernel
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>

#include "adaptk/error.hpp"
#include "adaptk/gram.hpp"
#include "adaptk/gram_kernel.hpp"

using adaptk::gram_kernel;

namespace {

bool message_is(const adaptk::usage_error& e, const std::string& expected) {
    BOOST_TEST(e.what() == expected);
    return e.what() == expected;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gram_kernel_dispatch)

BOOST_AUTO_TEST_CASE(names_round_trip_and_fp32_runs_everywhere) {
    BOOST_TEST(adaptk::gram_kernel_name(gram_kernel::fp32) == "fp32");
    BOOST_TEST(adaptk::gram_kernel_name(gram_kernel::avx512_bf16) == "avx512-bf16");
    BOOST_TEST(adaptk::gram_kernel_name(gram_kernel::arm_bf16) == "arm-bf16");
    BOOST_TEST(adaptk::gram_kernel_runnable(gram_kernel::fp32));
    BOOST_TEST((adaptk::gram_kernel_named("fp32") == gram_kernel::fp32));
    std::string runnable, skipped;
    for (const gram_kernel kernel : adaptk::all_gram_kernels()) {
        std::string& list = adaptk::gram_kernel_runnable(kernel) ? runnable : skipped;
        list += (list.empty() ? "" : ", ") + std::string(adaptk::gram_kernel_name(kernel));
        if (adaptk::gram_kernel_runnable(kernel))
            BOOST_TEST((adaptk::gram_kernel_named(adaptk::gram_kernel_name(kernel)) == kernel));
    }
    BOOST_TEST(adaptk::runnable_gram_kernel_names() == runnable);
    BOOST_TEST_MESSAGE("Gram kernels this CPU runs: " << runnable << "; skipped: " << (skipped.empty() ? "none" : skipped));
}

// The two BF16 kernels are for different architectures: one is always
// unavailable, so the refusal is tested on every machine.
BOOST_AUTO_TEST_CASE(a_kernel_this_cpu_cannot_run_is_refused_by_name) {
    const std::string available = adaptk::runnable_gram_kernel_names();
    int refused = 0;
    for (const gram_kernel kernel : adaptk::all_gram_kernels()) {
        if (adaptk::gram_kernel_runnable(kernel)) continue;
        const std::string name(adaptk::gram_kernel_name(kernel));
        const std::string expected = "Gram kernel '" + name + "' cannot run on this CPU (available: " + available + ")";
        BOOST_CHECK_EXCEPTION(adaptk::gram_kernel_named(name), adaptk::usage_error,
                              [&](const adaptk::usage_error& e) { return message_is(e, expected); });
        adaptk::gram_accumulator acc(8);
        const gram_kernel before = acc.kernel();
        BOOST_CHECK_EXCEPTION(acc.use_kernel(kernel), adaptk::usage_error,
                              [&](const adaptk::usage_error& e) { return message_is(e, expected); });
        BOOST_TEST((acc.kernel() == before));
        ++refused;
    }
    BOOST_TEST(refused >= 1);
}

BOOST_AUTO_TEST_CASE(an_unknown_kernel_name_is_refused_with_the_available_ones) {
    for (const std::string name : {"avx2", "", "FP32", "bf16"}) {
        const std::string expected =
            "unknown Gram kernel '" + name + "' (available: " + adaptk::runnable_gram_kernel_names() + ")";
        BOOST_CHECK_EXCEPTION(adaptk::gram_kernel_named(name), adaptk::usage_error,
                              [&](const adaptk::usage_error& e) { return message_is(e, expected); });
    }
}

// Without ADAPTK_GRAM_KERNEL the default is the fastest kernel this CPU
// runs: a BF16 one whenever there is one.
BOOST_AUTO_TEST_CASE(default_kernel_is_the_fastest_runnable_unless_forced) {
    const gram_kernel active = adaptk::active_gram_kernel();
    BOOST_TEST(adaptk::gram_kernel_runnable(active));
    BOOST_TEST((adaptk::gram_accumulator(4).kernel() == active));
    if (const char* forced = std::getenv("ADAPTK_GRAM_KERNEL")) {
        BOOST_TEST((active == adaptk::gram_kernel_named(forced)));
        return;
    }
    const bool any_bf16 = adaptk::gram_kernel_runnable(gram_kernel::avx512_bf16) ||
                          adaptk::gram_kernel_runnable(gram_kernel::arm_bf16);
    BOOST_TEST((active != gram_kernel::fp32) == any_bf16);
}

BOOST_AUTO_TEST_SUITE_END()
