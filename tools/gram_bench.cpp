// adaptk-gram-bench: the Gram accumulator alone on BF16 blocks, the shape the
// profile streams (d × block, 1024 vectors per block by default), for
// comparing its BF16 paths under `perf stat`:
//   bf16  the CPU's BF16 dot-product kernel (avx512-bf16 or arm-bf16), or one named
//   fp32  decode to float32, then ssyrk (the path without the kernel)
// Work: repeats · block · d(d+1)/2 multiply-adds. Prints one CSV row:
// kernel,dim,block,repeats,seconds,cpu_seconds,gflops (one triangle, 2 flop per multiply-add).

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "adaptk/dtype.hpp"
#include "adaptk/gram.hpp"

int main(int argc, char** argv) {
    if (argc != 5) {
        std::cerr << "Usage: adaptk-gram-bench bf16|fp32|avx512-bf16|arm-bf16 DIM BLOCK REPEATS\n";
        return 2;
    }
    try {
        const std::string kernel = argv[1];
        const std::size_t d = std::stoul(argv[2]), block = std::stoul(argv[3]), repeats = std::stoul(argv[4]);
        std::mt19937 rng(1);
        std::normal_distribution<float> normal(0.0f, 0.02f);
        std::vector<std::uint16_t> x(d * block);
        for (auto& value : x) value = adaptk::float_to_bf16(normal(rng));

        adaptk::gram_accumulator gram(d);
        if (kernel == "bf16" && gram.kernel() == adaptk::gram_kernel::fp32) {
            std::cerr << "adaptk-gram-bench: this CPU runs no BF16 kernel (only " << adaptk::runnable_gram_kernel_names()
                      << ")\n";
            return 1;
        }
        if (kernel != "bf16") gram.use_kernel(adaptk::gram_kernel_named(kernel));
        gram.add(x.data(), block);  // allocations and thread start-up outside the timing
        const auto start = std::chrono::steady_clock::now();
        const std::clock_t cpu_start = std::clock();
        for (std::size_t r = 0; r < repeats; ++r) gram.add(x.data(), block);
        const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double flop = 2.0 * static_cast<double>(repeats) * static_cast<double>(block) * static_cast<double>(d) *
                            static_cast<double>(d + 1) / 2.0;
        std::printf("kernel,dim,block,repeats,seconds,cpu_seconds,gflops\n%s,%zu,%zu,%zu,%.4f,%.4f,%.1f\n",
                    std::string(adaptk::gram_kernel_name(gram.kernel())).c_str(), d, block, repeats, seconds, cpu_seconds, flop / seconds / 1e9);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "adaptk-gram-bench: " << e.what() << '\n';
        return 1;
    }
}
