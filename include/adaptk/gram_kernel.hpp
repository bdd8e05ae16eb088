#pragma once
// The one place that decides how BF16 vector blocks are reduced into a Gram:
// which instruction-set kernels this binary holds, which of them this CPU
// runs (detected once per process), and which one the accumulator uses
// (the fastest runnable, or the one ADAPTK_GRAM_KERNEL names). Every kernel
// keeps the same accuracy contract: exact BF16 products summed in float32
// over a bounded number of terms, then flushed into float64.

#include <string>
#include <string_view>
#include <vector>

namespace adaptk {

enum class gram_kernel {
    fp32,         ///< decode to float32, then the BLAS ssyrk: every CPU
    avx512_bf16,  ///< vdpbf16ps (x86-64 with AVX512-BF16)
    arm_bf16,     ///< BFDOT (AArch64 with FEAT_BF16, Armv8.6)
};

/// The name ADAPTK_GRAM_KERNEL and --version use: "fp32", "avx512-bf16", "arm-bf16".
std::string_view gram_kernel_name(gram_kernel kernel) noexcept;

/// Every kernel adaptk knows, fp32 first, whether or not this binary or CPU has it.
const std::vector<gram_kernel>& all_gram_kernels();

/// True when this binary holds the kernel and this CPU and OS run it.
bool gram_kernel_runnable(gram_kernel kernel) noexcept;

/// The names of the runnable kernels, comma-separated: "fp32, avx512-bf16".
std::string runnable_gram_kernel_names();

/// `kernel`, after checking that this CPU runs it: throws usage_error naming
/// it and the kernels this CPU runs when it cannot.
gram_kernel require_runnable(gram_kernel kernel);

/// The kernel called `name`. Throws usage_error naming the value and the
/// kernels this CPU runs when the name is unknown or the CPU cannot run it.
gram_kernel gram_kernel_named(std::string_view name);

/// The accumulator's default: ADAPTK_GRAM_KERNEL when set (checked as by
/// gram_kernel_named), else the fastest runnable kernel. Read once per process.
gram_kernel active_gram_kernel();

}  // namespace adaptk
