#include "adaptk/gram_kernel.hpp"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "adaptk/error.hpp"
#include "detail/bf16_gram.hpp"

#if defined(ADAPTK_ARM_BF16_KERNEL)
#include <sys/auxv.h>
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1UL << 14)  // Linux arch/arm64 uapi hwcap.h, absent from older libc headers
#endif
#endif

namespace adaptk {
namespace {

// What this CPU runs, detected once. The kernels' files are built only for
// their architecture (src/meson.build defines ADAPTK_*_KERNEL beside them).
struct cpu_features {
    bool avx512_bf16 = false;
    bool arm_bf16 = false;
};

cpu_features detect() noexcept {
    cpu_features found;
#if defined(ADAPTK_AVX512_BF16_KERNEL)
    found.avx512_bf16 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#endif
#if defined(ADAPTK_ARM_BF16_KERNEL)
    found.arm_bf16 = (getauxval(AT_HWCAP2) & HWCAP2_BF16) != 0;
#endif
    return found;
}

const cpu_features& features() noexcept {
    static const cpu_features cached = detect();
    return cached;
}

}  // namespace

std::string_view gram_kernel_name(gram_kernel kernel) noexcept {
    switch (kernel) {
    case gram_kernel::avx512_bf16: return "avx512-bf16";
    case gram_kernel::arm_bf16: return "arm-bf16";
    case gram_kernel::fp32: break;
    }
    return "fp32";
}

const std::vector<gram_kernel>& all_gram_kernels() {
    static const std::vector<gram_kernel> kernels{gram_kernel::fp32, gram_kernel::avx512_bf16, gram_kernel::arm_bf16};
    return kernels;
}

bool gram_kernel_runnable(gram_kernel kernel) noexcept {
    switch (kernel) {
    case gram_kernel::avx512_bf16: return features().avx512_bf16;
    case gram_kernel::arm_bf16: return features().arm_bf16;
    case gram_kernel::fp32: break;
    }
    return true;
}

std::string runnable_gram_kernel_names() {
    std::string text;
    for (const gram_kernel kernel : all_gram_kernels())
        if (gram_kernel_runnable(kernel)) text += (text.empty() ? "" : ", ") + std::string(gram_kernel_name(kernel));
    return text;
}

gram_kernel require_runnable(gram_kernel kernel) {
    if (!gram_kernel_runnable(kernel))
        throw usage_error("Gram kernel '" + std::string(gram_kernel_name(kernel)) +
                          "' cannot run on this CPU (available: " + runnable_gram_kernel_names() + ")");
    return kernel;
}

gram_kernel gram_kernel_named(std::string_view name) {
    for (const gram_kernel kernel : all_gram_kernels())
        if (gram_kernel_name(kernel) == name) return require_runnable(kernel);
    throw usage_error("unknown Gram kernel '" + std::string(name) + "' (available: " + runnable_gram_kernel_names() + ")");
}

gram_kernel active_gram_kernel() {
    static const gram_kernel chosen = [] {
        if (const char* forced = std::getenv("ADAPTK_GRAM_KERNEL")) {
            try {
                return gram_kernel_named(forced);
            } catch (const usage_error& e) {
                throw usage_error(std::string("ADAPTK_GRAM_KERNEL: ") + e.what());
            }
        }
        if (features().avx512_bf16) return gram_kernel::avx512_bf16;
        if (features().arm_bf16) return gram_kernel::arm_bf16;
        return gram_kernel::fp32;
    }();
    return chosen;
}

namespace detail {

// The arguments go unused on a target with no BF16 kernel at all (armhf).
void bf16_syrk_upper(gram_kernel kernel, [[maybe_unused]] const std::uint16_t* x, [[maybe_unused]] std::size_t d,
                     [[maybe_unused]] std::size_t count, [[maybe_unused]] float* panels,
                     [[maybe_unused]] const panel_sink& finished, [[maybe_unused]] std::vector<std::uint32_t>& pack,
                     [[maybe_unused]] int threads) {
    switch (kernel) {
#if defined(ADAPTK_AVX512_BF16_KERNEL)
    case gram_kernel::avx512_bf16: avx512_bf16_syrk_upper(x, d, count, panels, finished, pack, threads); return;
#endif
#if defined(ADAPTK_ARM_BF16_KERNEL)
    case gram_kernel::arm_bf16: arm_bf16_syrk_upper(x, d, count, panels, finished, pack, threads); return;
#endif
    default: break;
    }
    throw std::logic_error("bf16_syrk_upper: kernel '" + std::string(gram_kernel_name(kernel)) + "' is not a BF16 kernel here");
}

}  // namespace detail
}  // namespace adaptk
