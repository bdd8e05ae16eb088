// adaptk-gram-bench: the Gram accumulator alone on BF16 blocks, the shape the
// profile streams (d × block, 1024 vectors per block by default), for
// comparing its two BF16 paths under `perf stat`:
//   bf16  the AVX512-BF16 dot-product kernel
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
    if (argc != 5 || (std::string(argv[1]) != "bf16" && std::string(argv[1]) != "fp32")) {
        std::cerr << "Usage: adaptk-gram-bench bf16|fp32 DIM BLOCK REPEATS\n";
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
        gram.use_bf16_kernel(kernel == "bf16");
        if (gram.bf16_kernel() != (kernel == "bf16")) {
            std::cerr << "adaptk-gram-bench: this CPU has no AVX512-BF16\n";
            return 1;
        }
        gram.add(x.data(), block);  // allocations and thread start-up outside the timing
        const auto start = std::chrono::steady_clock::now();
        const std::clock_t cpu_start = std::clock();
        for (std::size_t r = 0; r < repeats; ++r) gram.add(x.data(), block);
        const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double flop = 2.0 * static_cast<double>(repeats) * static_cast<double>(block) * static_cast<double>(d) *
                            static_cast<double>(d + 1) / 2.0;
        std::printf("kernel,dim,block,repeats,seconds,cpu_seconds,gflops\n%s,%zu,%zu,%zu,%.4f,%.4f,%.1f\n",
                    kernel.c_str(), d, block, repeats, seconds, cpu_seconds, flop / seconds / 1e9);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "adaptk-gram-bench: " << e.what() << '\n';
        return 1;
    }
}
