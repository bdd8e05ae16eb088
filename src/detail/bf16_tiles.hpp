#pragma once
// The blocking every BF16 Gram kernel shares (C += X·Xᵀ, upper triangle, X
// d×n BF16: n·d(d+1)/2 multiply-adds); each instruction set supplies only the
// packing and the register micro-tile (bf16_gram_avx512.cpp, bf16_gram_arm.cpp).
//
// BF16 dot-product instructions add to each float32 lane the two products of a
// *pair* of BF16 values, so the reduction index (the vector) is packed in
// pairs: lane l of pair p holds rows i of vectors 2p and 2p+1,
// q[panel][p][l] = x[2p][i] | x[2p+1][i] << 16 with i = lanes·panel + l (zeros
// past d and past n). The same packed copy serves both operands: `lanes` rows
// of it load as one register (rows of C), one 32-bit pair broadcasts as the
// other (a column of C).
//
// A thread takes a block of tile_panels·lanes rows of C, sums it into its own
// float32 panel (output_panel) and hands the finished panel to the caller,
// who adds it into its float64 Gram: only one row block per thread of float32
// sums is ever held. A block sweeps the columns right of its diagonal, 128
// pairs at a time: the block's packed rows stay in L1,
// and each float32 register sum spans 256 vectors before it is added to C,
// which keeps the rounding at ssyrk's level (measured on AVX512-BF16 at
// d = 512, 4096 Gaussian vectors, relative error against float64: 1.05e-7
// with 128-pair sweeps, 2.0e-7 with 256, ssyrk 1.10e-7).
//
// Included only by the kernel files: its templates are instantiated with each
// instruction set's own target flags.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "detail/bf16_gram.hpp"
#include "detail/share_work.hpp"

namespace adaptk::detail::bf16_tiles {

constexpr std::size_t pair_chunk = 128;  // pairs per register sum: 256 vectors
constexpr std::size_t pack_chunk = 16;   // pairs per packing task
// Below this many multiply-adds (≈ 0.1 ms of one core) a block runs on one
// thread: starting helpers costs tens of µs per block (--block-vectors 1).
constexpr double min_shared_work = 1 << 24;

// Rows [first_row, first_row + rows) of C's upper triangle, columns
// first_row .. d−1, column-major with leading dimension `rows`: one row block.
struct output_panel {
    float* c;
    std::size_t first_row;
    std::size_t rows;
    float* at(std::size_t i, std::size_t j) const noexcept { return c + (j - first_row) * rows + (i - first_row); }
};

template <std::size_t Lanes>
struct packed_block {
    const std::uint32_t* q;
    std::size_t d;
    std::size_t pairs;  // ⌈n/2⌉
    std::size_t panel_stride() const noexcept { return pairs * Lanes; }
    const std::uint32_t* at(std::size_t row, std::size_t pair) const noexcept {
        return q + (row / Lanes) * panel_stride() + pair * Lanes + row % Lanes;
    }
};

// Pairs [first, last) of X into the panel-major packed layout, element by
// element (the compiler vectorizes it at -O3); for instruction sets without
// a hand-written packer.
template <std::size_t Lanes>
void pack_pairs(const std::uint16_t* x, std::size_t d, std::size_t count, std::size_t first, std::size_t last,
                std::uint32_t* q, std::size_t pairs) {
    const std::size_t panels = (d + Lanes - 1) / Lanes;
    for (std::size_t p = first; p < last; ++p) {
        const std::uint16_t* even = x + 2 * p * d;
        const std::uint16_t* odd = 2 * p + 1 < count ? even + d : nullptr;
        for (std::size_t panel = 0; panel < panels; ++panel) {
            std::uint32_t* target = q + (panel * pairs + p) * Lanes;
            for (std::size_t l = 0; l < Lanes; ++l) {
                const std::size_t i = panel * Lanes + l;
                const std::uint32_t low = i < d ? even[i] : 0u;
                const std::uint32_t high = i < d && odd != nullptr ? odd[i] : 0u;
                target[l] = low | high << 16;
            }
        }
    }
}

// Rows [tile_rows·block, +tile_rows) of C against every column right of their
// diagonal, through Isa::micro_tile<panels>.
template <class Isa>
void row_block(const packed_block<Isa::lanes>& x, std::size_t block, const output_panel& c) {
    constexpr std::size_t tile_rows = Isa::tile_panels * Isa::lanes;
    const std::size_t i0 = block * tile_rows;
    const std::size_t rows = std::min(tile_rows, x.d - i0);
    const std::size_t panels = (rows + Isa::lanes - 1) / Isa::lanes;
    for (std::size_t p0 = 0; p0 < x.pairs; p0 += pair_chunk) {
        const std::size_t chunk = std::min(pair_chunk, x.pairs - p0);
        const bool add = p0 > 0;
        for (std::size_t j0 = i0; j0 < x.d; j0 += Isa::tile_columns) {
            const std::size_t columns = std::min(Isa::tile_columns, x.d - j0);
            static_assert(Isa::tile_panels == 3, "the dispatch below covers 1 to 3 panels");
            if (panels == 3)
                Isa::template micro_tile<3>(x, i0, rows, j0, columns, p0, chunk, c, add);
            else if (panels == 2)
                Isa::template micro_tile<2>(x, i0, rows, j0, columns, p0, chunk, c, add);
            else
                Isa::template micro_tile<1>(x, i0, rows, j0, columns, p0, chunk, c, add);
        }
    }
}

// The whole kernel: packing, then the row blocks (widest, topmost first),
// each handed out first come first served, so a busy core just takes fewer;
// a thread's blocks go through its own slot of `panels`.
template <class Isa>
void syrk_upper(const std::uint16_t* x, std::size_t d, std::size_t count, float* panels, const panel_sink& finished,
                std::vector<std::uint32_t>& pack, int threads) {
    if (d == 0 || count == 0) return;
    constexpr std::size_t tile_rows = Isa::tile_panels * Isa::lanes;
    static_assert(tile_rows <= bf16_panel_rows, "a row block must fit a thread's panel");
    const std::size_t pairs = (count + 1) / 2;
    const std::size_t panels_of_x = (d + Isa::lanes - 1) / Isa::lanes;
    if (pack.size() < panels_of_x * pairs * Isa::lanes) pack.resize(panels_of_x * pairs * Isa::lanes);
    const packed_block<Isa::lanes> packed{pack.data(), d, pairs};
    const std::size_t blocks = (d + tile_rows - 1) / tile_rows;
    if (static_cast<double>(count) * static_cast<double>(d) * static_cast<double>(d) / 2 < min_shared_work) threads = 1;

    std::atomic<std::size_t> next_pairs{0};
    share_work(threads, (pairs + pack_chunk - 1) / pack_chunk, [&] {
        for (std::size_t p; (p = next_pairs.fetch_add(pack_chunk, std::memory_order_relaxed)) < pairs;)
            Isa::pack_pairs(x, d, count, p, std::min(p + pack_chunk, pairs), pack.data(), pairs);
    });
    std::atomic<std::size_t> next_block{0}, next_slot{0};
    share_work(threads, blocks, [&] {
        float* own = panels + next_slot.fetch_add(1, std::memory_order_relaxed) * bf16_panel_rows * d;
        for (std::size_t block; (block = next_block.fetch_add(1, std::memory_order_relaxed)) < blocks;) {
            const output_panel out{own, block * tile_rows, std::min(tile_rows, d - block * tile_rows)};
            row_block<Isa>(packed, block, out);
            finished(out.c, out.first_row, out.rows);
        }
    });
}

}  // namespace adaptk::detail::bf16_tiles
