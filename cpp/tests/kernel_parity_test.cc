// Parity test for the SIMD distance kernels: every level this CPU and build support (other than
// serial) is compared with the serial reference table on seeded random data, for every kernel in
// the table (ManyFn per valid dtype/metric pair, to_f32, dot_tile).
//
// What is checked
//   - ManyFn results over dims 1..17, 31-33, 63-65, 127-129, 768, 1536 (binary: 8..2048 bits and
//     one row past 32 KiB), rows with stride > row size and start addresses off the vector
//     alignment. Integer results (int8 L2/IP/COSINE, HAMMING, JACCARD) must match exactly; float
//     results within a bound scaled by dim and by the sum of absolute terms (the worst-case error
//     of a length-dim float32 sum, for both sides).
//   - No kernel reads past its data: each buffer ends at a PROT_NONE page (a fault is reported as
//     a failure, not a crash), and the bytes between rows are 0xFF (NaN for f16/bf16/f32), so
//     reading into the gap changes a result.
//   - Kernels write exactly n outputs / dim floats / the mr x nr tile, and n == 0 reads no rows.
//   - Special values: zero vectors give cosine 0 and Jaccard 0; a NaN or inf anywhere in a row (or
//     in the query) gives a non-finite output; int8 extremes (-128, 127) stay exact; f16 and bf16
//     to_f32 are checked on all 65536 bit patterns.
//   - dot_tile against serial (panel repacked to serial's width), with accumulate on and off;
//     every mr from 1 to max_mr and every row position in the tile give bit-identical results
//     (the accumulation-order contract in distance.h); q is not read past row mr - 1.
//
// Usage: kernel_parity_test [--require=LEVEL ...]   (fails if LEVEL is not available)
// VECSTORE_SEED overrides the seed. The last line of output is "N passed, N failed"; the exit
// status is non-zero if anything failed.
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "distance/distance.h"
#include "distance/scalar.h"

namespace vecstore {
namespace distance {
namespace {

constexpr double kUnitRoundoff = 1.0 / 16777216.0;  // 2^-24, float32
constexpr size_t kRows = 7;
constexpr int kMaxPrintedFailures = 60;

// ---- reporting ----------------------------------------------------------------------------------

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const char* fmt, ...) {
    if (ok) {
        ++g_passed;
        return;
    }
    ++g_failed;
    if (g_failed <= kMaxPrintedFailures) {
        std::printf("FAIL ");
        va_list args;
        va_start(args, fmt);
        std::vprintf(fmt, args);
        va_end(args);
        std::printf("\n");
    } else if (g_failed == kMaxPrintedFailures + 1) {
        std::printf("(further failures not printed)\n");
    }
}

// ---- guarded memory -----------------------------------------------------------------------------

sigjmp_buf g_fault_jump;
volatile sig_atomic_t g_fault_armed = 0;

void on_fault(int sig) {
    if (g_fault_armed) siglongjmp(g_fault_jump, sig);
    signal(sig, SIG_DFL);
    raise(sig);
}

void install_fault_handlers() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fault;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
}

// Runs f(); returns false if it touched a guard page (or faulted otherwise). Nests: an outer
// guard is restored on the way out.
template <class F>
bool run_guarded(F&& f) {
    sigjmp_buf outer;
    std::memcpy(&outer, &g_fault_jump, sizeof(outer));
    const sig_atomic_t outer_armed = g_fault_armed;
    if (sigsetjmp(g_fault_jump, 1) != 0) {
        std::memcpy(&g_fault_jump, &outer, sizeof(outer));
        g_fault_armed = outer_armed;
        return false;
    }
    g_fault_armed = 1;
    f();
    std::memcpy(&g_fault_jump, &outer, sizeof(outer));
    g_fault_armed = outer_armed;
    return true;
}

// A writable area of at least `bytes` (page-aligned start) followed by a PROT_NONE page, so a read
// of the byte at end() faults. Filled with 0xFF.
class Region {
public:
    explicit Region(size_t bytes) {
        page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        size_ = (bytes + page_ - 1) / page_ * page_;
        if (size_ == 0) size_ = page_;
        void* p = mmap(nullptr, size_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (p == MAP_FAILED) {
            std::perror("mmap");
            std::exit(2);
        }
        base_ = static_cast<unsigned char*>(p);
        if (mprotect(base_ + size_, page_, PROT_NONE) != 0) {
            std::perror("mprotect");
            std::exit(2);
        }
        std::memset(base_, 0xFF, size_);
    }
    ~Region() { munmap(base_, size_ + page_); }
    Region(const Region&) = delete;
    Region& operator=(const Region&) = delete;

    unsigned char* begin() const { return base_; }
    unsigned char* end() const { return base_ + size_; }

private:
    unsigned char* base_ = nullptr;
    size_t size_ = 0;
    size_t page_ = 0;
};

// Where a block of `total` bytes goes in its region: ending at the guard page, or starting
// `misalign` bytes past a page boundary (off every vector alignment) with 0xFF bytes after it.
enum class Layout { kAtGuard, kMisaligned };
constexpr size_t kSlack = 128;  // region bytes beyond the data, for kMisaligned

unsigned char* place(const Region& r, size_t total, Layout layout, size_t misalign) {
    return layout == Layout::kAtGuard ? r.end() - total : r.begin() + misalign;
}

const char* layout_name(Layout l) { return l == Layout::kAtGuard ? "at-guard" : "misaligned"; }

// ---- data ---------------------------------------------------------------------------------------

const char* dtype_name(DType t) {
    switch (t) {
        case DType::kFloat32: return "f32";
        case DType::kFloat16: return "f16";
        case DType::kBFloat16: return "bf16";
        case DType::kInt8: return "i8";
        case DType::kBinary: return "b1";
    }
    return "?";
}

const char* metric_name(Metric m) {
    switch (m) {
        case Metric::kL2: return "l2";
        case Metric::kIP: return "ip";
        case Metric::kCosine: return "cos";
        case Metric::kHamming: return "hamming";
        case Metric::kJaccard: return "jaccard";
    }
    return "?";
}

size_t row_bytes(DType t, size_t dim) {
    return t == DType::kBinary ? dim / 8 : dim * element_bytes(t);
}

bool is_float_type(DType t) {
    return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

void put_u16(unsigned char* p, size_t k, uint16_t v) { std::memcpy(p + 2 * k, &v, 2); }
void put_f32(unsigned char* p, size_t k, float v) { std::memcpy(p + 4 * k, &v, 4); }

// Element k of a row: float_value for f32, the bits int_value for f16/bf16, int_value for int8.
void set_element(DType t, unsigned char* p, size_t k, int int_value, float float_value) {
    switch (t) {
        case DType::kFloat32: put_f32(p, k, float_value); break;
        case DType::kFloat16:
        case DType::kBFloat16: put_u16(p, k, static_cast<uint16_t>(int_value)); break;
        default: p[k] = static_cast<unsigned char>(int_value); break;
    }
}

// Random finite values of moderate range, so float sums neither overflow nor underflow.
void fill_random(DType t, unsigned char* p, size_t dim, std::mt19937& rng) {
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    std::uniform_int_distribution<int> bits(0, 0xffff);
    switch (t) {
        case DType::kFloat32:
            for (size_t k = 0; k < dim; ++k) put_f32(p, k, uni(rng));
            break;
        case DType::kFloat16:
            for (size_t k = 0; k < dim; ++k) {
                const uint32_t r = static_cast<uint32_t>(bits(rng));
                const uint32_t exp = 10 + r % 11;  // 2^-5 .. 2^5
                put_u16(p, k,
                        static_cast<uint16_t>((r & 0x8000u) | (exp << 10) |
                                              (static_cast<uint32_t>(bits(rng)) & 0x3ffu)));
            }
            break;
        case DType::kBFloat16:
            for (size_t k = 0; k < dim; ++k) {
                const uint32_t r = static_cast<uint32_t>(bits(rng));
                const uint32_t exp = 117 + r % 21;  // 2^-10 .. 2^10
                put_u16(p, k,
                        static_cast<uint16_t>((r & 0x8000u) | (exp << 7) |
                                              (static_cast<uint32_t>(bits(rng)) & 0x7fu)));
            }
            break;
        case DType::kInt8: {
            std::uniform_int_distribution<int> i8(-128, 127);
            for (size_t k = 0; k < dim; ++k) p[k] = static_cast<unsigned char>(i8(rng));
            break;
        }
        case DType::kBinary: {
            std::uniform_int_distribution<int> byte(0, 255);
            for (size_t k = 0; k < dim / 8; ++k) p[k] = static_cast<unsigned char>(byte(rng));
            break;
        }
    }
}

double value_at(DType t, const unsigned char* p, size_t k) {
    switch (t) {
        case DType::kFloat32: return load_f32(p, k);
        case DType::kFloat16: return load_f16(p, k);
        case DType::kBFloat16: return load_bf16(p, k);
        default: return static_cast<int8_t>(p[k]);
    }
}

// Allowed |simd - serial| for one float-typed result: both sides are float32 sums of dim terms
// whose rounding error is at most about (dim + 1) u sum|term_k| each; the extra 16 covers the
// vector lanes' final reduction. Cosine adds the error of the two norms, relative to |result|.
double float_tolerance(Metric m, DType t, const unsigned char* q, const unsigned char* x,
                       size_t dim, double result) {
    double abs_terms = 0.0, qq = 0.0, xx = 0.0;
    for (size_t k = 0; k < dim; ++k) {
        const double a = value_at(t, q, k), b = value_at(t, x, k);
        abs_terms += m == Metric::kL2 ? (a - b) * (a - b) : std::fabs(a * b);
        qq += a * a;
        xx += b * b;
    }
    const double bound = 2.0 * (static_cast<double>(dim) + 16.0) * kUnitRoundoff;
    if (m == Metric::kCosine) {
        const double norms = std::sqrt(qq) * std::sqrt(xx);
        const double ratio = norms > 0.0 ? abs_terms / norms : 0.0;
        return bound * (ratio + std::fabs(result)) + 8.0 * kUnitRoundoff * std::fabs(result) +
               1e-30;
    }
    return bound * abs_terms + 8.0 * kUnitRoundoff * std::fabs(result) + 1e-30;
}

bool same_float(float a, float b) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    return a == b;
}

bool close_float(float got, float want, double tol) {
    if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want);
    if (std::isinf(got) || std::isinf(want)) return got == want;
    return std::fabs(static_cast<double>(got) - static_cast<double>(want)) <= tol;
}

bool exact_metric(DType t) { return t == DType::kInt8 || t == DType::kBinary; }

// ---- ManyFn -------------------------------------------------------------------------------------

struct Case {
    DType dtype;
    Metric metric;
    ManyFn ref;
    ManyFn fn;
};

std::vector<Case> valid_cases(const KernelTable& serial, const KernelTable& t, const char* level) {
    std::vector<Case> cases;
    for (int d = 0; d < kNumDTypes; ++d) {
        for (int m = 0; m < kNumMetrics; ++m) {
            if (serial.many[d][m] == nullptr) continue;
            check(t.many[d][m] != nullptr, "%s: many[%s][%s] is null", level,
                  dtype_name(static_cast<DType>(d)), metric_name(static_cast<Metric>(m)));
            if (t.many[d][m] == nullptr) continue;
            cases.push_back(
                {static_cast<DType>(d), static_cast<Metric>(m), serial.many[d][m], t.many[d][m]});
        }
    }
    return cases;
}

// A query and n rows in guarded regions, rows `stride` bytes apart with 0xFF gaps between them.
struct Inputs {
    Inputs(DType t, size_t dim_elems, size_t rows, Layout layout)
        : dtype(t),
          dim(dim_elems),
          n(rows),
          rb(row_bytes(t, dim_elems)),
          stride(rb + (t == DType::kBinary ? 1 : element_bytes(t)) * (1 + dim_elems % 3)),
          misalign(t == DType::kBinary ? 1 : element_bytes(t)),
          q_region(rb + kSlack),
          x_region(total() + kSlack),
          q(place(q_region, rb, layout, misalign)),
          x(place(x_region, total(), layout, misalign)) {}

    size_t total() const { return n == 0 ? 0 : (n - 1) * stride + rb; }
    unsigned char* row(size_t i) const { return x + i * stride; }

    void randomize(std::mt19937& rng) {
        fill_random(dtype, q, dim, rng);
        for (size_t i = 0; i < n; ++i) fill_random(dtype, row(i), dim, rng);
    }

    DType dtype;
    size_t dim, n, rb, stride, misalign;
    Region q_region, x_region;
    unsigned char* q;
    unsigned char* x;
};

// Runs serial and the kernel under test on the same inputs and compares every row.
void compare_many(const char* level, const Case& c, const Inputs& in, const char* what) {
    constexpr float kSentinel = -12345.5f;
    std::vector<float> want(in.n + 1, kSentinel), got(in.n + 1, kSentinel);
    c.ref(in.q, in.x, in.n, in.stride, in.dim, want.data());
    const bool no_fault =
        run_guarded([&] { c.fn(in.q, in.x, in.n, in.stride, in.dim, got.data()); });
    check(no_fault, "%s %s_%s dim=%zu %s: read past the end of its input (fault)", level,
          metric_name(c.metric), dtype_name(c.dtype), in.dim, what);
    if (!no_fault) return;
    check(got[in.n] == kSentinel, "%s %s_%s dim=%zu %s: wrote past out[n-1]", level,
          metric_name(c.metric), dtype_name(c.dtype), in.dim, what);
    for (size_t i = 0; i < in.n; ++i) {
        bool ok;
        double tol = 0.0;
        if (exact_metric(c.dtype)) {
            ok = same_float(got[i], want[i]);
        } else {
            tol = float_tolerance(c.metric, c.dtype, in.q, in.row(i), in.dim, want[i]);
            ok = close_float(got[i], want[i], tol);
        }
        check(ok, "%s %s_%s dim=%zu %s row %zu: got %.9g want %.9g (tol %.3g)", level,
              metric_name(c.metric), dtype_name(c.dtype), in.dim, what, i,
              static_cast<double>(got[i]), static_cast<double>(want[i]), tol);
    }
}

const std::vector<size_t>& element_dims() {
    static const std::vector<size_t> dims = [] {
        std::vector<size_t> d;
        for (size_t k = 1; k <= 17; ++k) d.push_back(k);
        for (size_t k : {31, 32, 33, 63, 64, 65, 127, 128, 129, 768, 1536}) d.push_back(k);
        return d;
    }();
    return dims;
}

// Bits. 264144 bits is 33018 bytes: past the 32 KiB at which narrow popcount counters must be
// widened (NEON's uint16 lanes).
const std::vector<size_t>& binary_dims() {
    static const std::vector<size_t> dims = [] {
        std::vector<size_t> d;
        for (size_t b = 8; b <= 136; b += 8) d.push_back(b);
        for (size_t b : {248, 256, 264, 504, 512, 520, 1016, 1024, 1032, 1536, 2048, 264144})
            d.push_back(b);
        return d;
    }();
    return dims;
}

void test_many_random(const char* level, const std::vector<Case>& cases, std::mt19937& rng) {
    for (const Case& c : cases) {
        const auto& dims = c.dtype == DType::kBinary ? binary_dims() : element_dims();
        for (size_t dim : dims) {
            const size_t n = dim > 100000 ? 2 : kRows;
            for (Layout layout : {Layout::kAtGuard, Layout::kMisaligned}) {
                Inputs in(c.dtype, dim, n, layout);
                in.randomize(rng);
                compare_many(level, c, in, layout_name(layout));
            }
        }
        // n == 0 writes nothing and reads no row: x points at the guard page.
        Inputs in(c.dtype, c.dtype == DType::kBinary ? 64 : 16, 1, Layout::kAtGuard);
        in.randomize(rng);
        float out = -1.0f;
        const bool no_fault =
            run_guarded([&] { c.fn(in.q, in.x_region.end(), 0, in.stride, in.dim, &out); });
        check(no_fault && out == -1.0f, "%s %s_%s n=0: %s", level, metric_name(c.metric),
              dtype_name(c.dtype), no_fault ? "wrote an output" : "read a row (fault)");
    }
}

// ---- special values -----------------------------------------------------------------------------

void test_zero_vectors(const char* level, const std::vector<Case>& cases, std::mt19937& rng) {
    for (const Case& c : cases) {
        if (c.metric != Metric::kCosine && c.metric != Metric::kJaccard) continue;
        const std::vector<size_t> dims = c.dtype == DType::kBinary
                                             ? std::vector<size_t>{8, 64, 136, 1024}
                                             : std::vector<size_t>{1, 7, 16, 33, 768};
        for (size_t dim : dims) {
            Inputs in(c.dtype, dim, kRows, Layout::kAtGuard);
            in.randomize(rng);
            // Zero query: every result is 0 for cosine; for Jaccard only the zero row is.
            std::memset(in.q, 0, in.rb);
            std::memset(in.row(3), 0, in.rb);
            std::vector<float> got(kRows, -1.0f), want(kRows, -1.0f);
            c.ref(in.q, in.x, kRows, in.stride, dim, want.data());
            c.fn(in.q, in.x, kRows, in.stride, dim, got.data());
            for (size_t i = 0; i < kRows; ++i) {
                const bool expect_zero = c.metric == Metric::kCosine || i == 3;
                if (expect_zero) {
                    check(got[i] == 0.0f && want[i] == 0.0f,
                          "%s %s_%s dim=%zu zero query, row %zu: got %g serial %g, want 0", level,
                          metric_name(c.metric), dtype_name(c.dtype), dim, i,
                          static_cast<double>(got[i]), static_cast<double>(want[i]));
                }
            }
            // Random query, one zero row.
            fill_random(c.dtype, in.q, dim, rng);
            c.fn(in.q, in.x, kRows, in.stride, dim, got.data());
            if (c.metric == Metric::kCosine) {
                check(got[3] == 0.0f, "%s %s_%s dim=%zu zero row: got %g, want 0", level,
                      metric_name(c.metric), dtype_name(c.dtype), dim, static_cast<double>(got[3]));
            }
        }
    }
}

void test_non_finite(const char* level, const std::vector<Case>& cases, std::mt19937& rng) {
    struct Special {
        const char* name;
        uint16_t f16, bf16;
        float f32;
    };
    const Special specials[] = {{"nan", 0x7e00, 0x7fc0, std::nanf("")},
                                {"+inf", 0x7c00, 0x7f80, INFINITY},
                                {"-inf", 0xfc00, 0xff80, -INFINITY}};
    for (const Case& c : cases) {
        if (!is_float_type(c.dtype)) continue;
        for (size_t dim : {1, 3, 4, 8, 15, 16, 17, 33, 768}) {
            for (const Special& s : specials) {
                const int bits = c.dtype == DType::kFloat16 ? s.f16 : s.bf16;
                for (size_t pos : {size_t{0}, dim / 2, dim - 1}) {
                    Inputs in(c.dtype, dim, kRows, Layout::kAtGuard);
                    in.randomize(rng);
                    set_element(c.dtype, in.row(2), pos, bits, s.f32);
                    std::vector<float> got(kRows), want(kRows);
                    c.ref(in.q, in.x, kRows, in.stride, dim, want.data());
                    c.fn(in.q, in.x, kRows, in.stride, dim, got.data());
                    check(!std::isfinite(got[2]) && !std::isfinite(want[2]),
                          "%s %s_%s dim=%zu %s at row 2 [%zu]: got %g serial %g, want non-finite",
                          level, metric_name(c.metric), dtype_name(c.dtype), dim, s.name, pos,
                          static_cast<double>(got[2]), static_cast<double>(want[2]));
                    check(std::isfinite(got[1]) && std::isfinite(got[3]),
                          "%s %s_%s dim=%zu %s at row 2: neighbouring rows not finite", level,
                          metric_name(c.metric), dtype_name(c.dtype), dim, s.name);
                    // The same value in the query poisons every row.
                    set_element(c.dtype, in.q, pos, bits, s.f32);
                    c.fn(in.q, in.x, kRows, in.stride, dim, got.data());
                    bool all = true;
                    for (float v : got) all = all && !std::isfinite(v);
                    check(all, "%s %s_%s dim=%zu %s in query [%zu]: a finite output", level,
                          metric_name(c.metric), dtype_name(c.dtype), dim, s.name, pos);
                }
            }
        }
    }
}

void test_int8_extremes(const char* level, const std::vector<Case>& cases) {
    for (const Case& c : cases) {
        if (c.dtype != DType::kInt8) continue;
        for (size_t dim : {1, 15, 16, 17, 768, 1536, 32768}) {
            Inputs in(DType::kInt8, dim, 4, Layout::kMisaligned);
            std::memset(in.q, 0x80, dim);       // -128
            std::memset(in.row(0), 0x80, dim);  // -128
            std::memset(in.row(1), 0x7f, dim);  // 127
            for (size_t k = 0; k < dim; ++k) {
                in.row(2)[k] = k % 2 ? 0x80 : 0x7f;
                in.row(3)[k] = k % 3 ? 0x81 : 0x00;
            }
            std::vector<float> got(4), want(4);
            c.ref(in.q, in.x, 4, in.stride, dim, want.data());
            c.fn(in.q, in.x, 4, in.stride, dim, got.data());
            for (size_t i = 0; i < 4; ++i) {
                check(same_float(got[i], want[i]),
                      "%s %s_i8 dim=%zu extremes row %zu: got %.9g want %.9g", level,
                      metric_name(c.metric), dim, i, static_cast<double>(got[i]),
                      static_cast<double>(want[i]));
            }
            if (c.metric == Metric::kIP) {
                check(got[0] == 16384.0f * static_cast<float>(dim),
                      "%s ip_i8 dim=%zu: -128*-128 sum %.9g", level, dim,
                      static_cast<double>(got[0]));
            }
            if (c.metric == Metric::kL2) {
                check(got[1] == 65025.0f * static_cast<float>(dim),
                      "%s l2_i8 dim=%zu: (-128-127)^2 sum %.9g", level, dim,
                      static_cast<double>(got[1]));
            }
        }
    }
}

void test_binary_extremes(const char* level, const std::vector<Case>& cases) {
    for (const Case& c : cases) {
        if (c.dtype != DType::kBinary) continue;
        for (size_t dim : {8, 128, 136, 2048, 264144, 1048576}) {
            Inputs in(DType::kBinary, dim, 2, Layout::kMisaligned);
            std::memset(in.q, 0xff, in.rb);
            std::memset(in.row(0), 0x00, in.rb);
            std::memset(in.row(1), 0xff, in.rb);
            std::vector<float> got(2), want(2);
            c.ref(in.q, in.x, 2, in.stride, dim, want.data());
            c.fn(in.q, in.x, 2, in.stride, dim, got.data());
            const float expect0 = c.metric == Metric::kHamming ? static_cast<float>(dim) : 1.0f;
            check(got[0] == expect0 && got[1] == 0.0f && want[0] == expect0 && want[1] == 0.0f,
                  "%s %s_b1 dim=%zu all-ones vs zeros/ones: got %.9g %.9g serial %.9g %.9g", level,
                  metric_name(c.metric), dim, static_cast<double>(got[0]),
                  static_cast<double>(got[1]), static_cast<double>(want[0]),
                  static_cast<double>(want[1]));
        }
    }
}

// ---- to_f32 -------------------------------------------------------------------------------------

void compare_to_f32(const char* level, DType t, ToF32Fn ref, ToF32Fn fn, const unsigned char* src,
                    size_t dim, const char* what) {
    constexpr float kSentinel = -777.25f;
    std::vector<float> want(dim), got(dim + 4, kSentinel);
    ref(src, dim, want.data());
    const bool no_fault = run_guarded([&] { fn(src, dim, got.data()); });
    check(no_fault, "%s to_f32_%s dim=%zu %s: read past the end (fault)", level, dtype_name(t), dim,
          what);
    if (!no_fault) return;
    size_t bad = 0, first_bad = 0;
    for (size_t k = 0; k < dim; ++k) {
        // Bit-identical except that a NaN's payload may be quietened by hardware conversion.
        const bool ok =
            std::isnan(want[k]) ? std::isnan(got[k]) : f32_to_bits(got[k]) == f32_to_bits(want[k]);
        if (!ok && bad++ == 0) first_bad = k;
    }
    check(bad == 0, "%s to_f32_%s dim=%zu %s: %zu mismatches, first [%zu] got %.9g want %.9g",
          level, dtype_name(t), dim, what, bad, first_bad,
          static_cast<double>(bad ? got[first_bad] : 0.0f),
          static_cast<double>(bad ? want[first_bad] : 0.0f));
    bool tail_ok = true;
    for (size_t k = dim; k < dim + 4; ++k) tail_ok = tail_ok && got[k] == kSentinel;
    check(tail_ok, "%s to_f32_%s dim=%zu %s: wrote past dst[dim-1]", level, dtype_name(t), dim,
          what);
}

void test_to_f32(const char* level, const KernelTable& serial, const KernelTable& t,
                 std::mt19937& rng) {
    std::uniform_int_distribution<int> byte(0, 255);
    for (int d = 0; d < kNumDTypes; ++d) {
        const DType dtype = static_cast<DType>(d);
        if (serial.to_f32[d] == nullptr) continue;
        check(t.to_f32[d] != nullptr, "%s: to_f32[%s] is null", level, dtype_name(dtype));
        if (t.to_f32[d] == nullptr) continue;
        for (size_t dim : element_dims()) {
            for (Layout layout : {Layout::kAtGuard, Layout::kMisaligned}) {
                const size_t bytes = dim * element_bytes(dtype);
                Region r(bytes + kSlack);
                unsigned char* src = place(r, bytes, layout, element_bytes(dtype));
                // Any bit pattern: subnormals, infinities and NaNs included.
                for (size_t b = 0; b < bytes; ++b) src[b] = static_cast<unsigned char>(byte(rng));
                compare_to_f32(level, dtype, serial.to_f32[d], t.to_f32[d], src, dim,
                               layout_name(layout));
            }
        }
        if (dtype == DType::kFloat16 || dtype == DType::kBFloat16) {
            const size_t dim = 65536;
            Region r(2 * dim);
            unsigned char* src = place(r, 2 * dim, Layout::kAtGuard, 0);
            for (size_t k = 0; k < dim; ++k) put_u16(src, k, static_cast<uint16_t>(k));
            compare_to_f32(level, dtype, serial.to_f32[d], t.to_f32[d], src, dim,
                           "all bit patterns");
        }
    }
}

// ---- dot_tile -----------------------------------------------------------------------------------

// Serial reference for an mr x nr tile: the nr-wide panel is repacked into serial-width panels.
void serial_tile(const KernelTable& serial, const float* q, size_t ldq, size_t mr,
                 const float* panel, size_t nr, size_t kc, float* c, size_t ldc) {
    const size_t snr = serial.nr;
    std::vector<float> sub(kc * snr);
    for (size_t j0 = 0; j0 < nr; j0 += snr) {
        for (size_t k = 0; k < kc; ++k) {
            for (size_t j = 0; j < snr; ++j) sub[k * snr + j] = panel[k * nr + j0 + j];
        }
        for (size_t i0 = 0; i0 < mr; i0 += serial.max_mr) {
            const size_t rows = mr - i0 < serial.max_mr ? mr - i0 : serial.max_mr;
            serial.dot_tile(q + i0 * ldq, ldq, rows, sub.data(), kc, c + i0 * ldc + j0, ldc, false);
        }
    }
}

void test_dot_tile(const char* level, const KernelTable& serial, const KernelTable& t,
                   std::mt19937& rng) {
    check(t.dot_tile != nullptr, "%s: dot_tile is null", level);
    check(t.max_mr >= 1 && t.max_mr <= kMaxMr && t.nr > 0 && t.nr % serial.nr == 0,
          "%s: bad panel geometry max_mr=%zu nr=%zu", level, t.max_mr, t.nr);
    if (t.dot_tile == nullptr || t.max_mr < 1 || t.max_mr > kMaxMr || t.nr % serial.nr != 0) {
        return;
    }
    const size_t mr_max = t.max_mr, nr = t.nr, ldc = nr + 5;
    constexpr float kSentinel = 4242.5f;
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    for (size_t kc : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 257}) {
        const size_t ldq = kc + 3;
        std::vector<float> q_full(mr_max * ldq), panel(kc * nr), c_init(mr_max * ldc);
        for (float& v : q_full) v = uni(rng);
        for (float& v : panel) v = uni(rng);
        for (float& v : c_init) v = uni(rng);

        std::vector<float> want(mr_max * ldc);
        serial_tile(serial, q_full.data(), ldq, mr_max, panel.data(), nr, kc, want.data(), ldc);

        std::vector<float> full;  // the mr == max_mr result, which every other mr must equal
        for (size_t mr = mr_max; mr >= 1; --mr) {
            // q holds exactly mr rows and ends at a guard page.
            const size_t q_floats = (mr - 1) * ldq + kc;
            Region r(q_floats * 4);
            float* q = reinterpret_cast<float*>(place(r, q_floats * 4, Layout::kAtGuard, 0));
            std::memcpy(q, q_full.data(), q_floats * 4);

            std::vector<float> c((mr_max + 1) * ldc, kSentinel);
            const bool no_fault = run_guarded(
                [&] { t.dot_tile(q, ldq, mr, panel.data(), kc, c.data(), ldc, false); });
            check(no_fault, "%s dot_tile kc=%zu mr=%zu: read q past row mr-1 (fault)", level, kc,
                  mr);
            if (!no_fault) continue;
            if (mr == mr_max) full = c;

            size_t bad = 0, order_bad = 0, outside_bad = 0;
            for (size_t i = 0; i <= mr_max; ++i) {
                for (size_t j = 0; j < ldc; ++j) {
                    const float got = c[i * ldc + j];
                    if (i >= mr || j >= nr) {
                        if (got != kSentinel) ++outside_bad;
                        continue;
                    }
                    double abs_terms = 0.0;
                    for (size_t k = 0; k < kc; ++k) {
                        abs_terms +=
                            std::fabs(static_cast<double>(q_full[i * ldq + k]) * panel[k * nr + j]);
                    }
                    const double tol =
                        2.0 * (static_cast<double>(kc) + 16.0) * kUnitRoundoff * abs_terms + 1e-30;
                    if (!close_float(got, want[i * ldc + j], tol)) ++bad;
                    if (f32_to_bits(got) != f32_to_bits(full[i * ldc + j])) ++order_bad;
                }
            }
            check(bad == 0, "%s dot_tile kc=%zu mr=%zu: %zu cells differ from serial", level, kc,
                  mr, bad);
            check(order_bad == 0,
                  "%s dot_tile kc=%zu mr=%zu: %zu cells not bit-identical to mr=%zu", level, kc, mr,
                  order_bad, mr_max);
            check(outside_bad == 0, "%s dot_tile kc=%zu mr=%zu: %zu writes outside the tile", level,
                  kc, mr, outside_bad);

            // accumulate == true adds the same sums onto c.
            std::vector<float> acc((mr_max + 1) * ldc, kSentinel);
            for (size_t i = 0; i < mr; ++i) {
                for (size_t j = 0; j < nr; ++j) acc[i * ldc + j] = c_init[i * ldc + j];
            }
            t.dot_tile(q, ldq, mr, panel.data(), kc, acc.data(), ldc, true);
            size_t acc_bad = 0;
            for (size_t i = 0; i <= mr_max; ++i) {
                for (size_t j = 0; j < ldc; ++j) {
                    const float got = acc[i * ldc + j];
                    if (i >= mr || j >= nr) {
                        if (got != kSentinel) ++acc_bad;
                        continue;
                    }
                    const double expect = static_cast<double>(c_init[i * ldc + j]) + c[i * ldc + j];
                    const double tol = 4.0 * kUnitRoundoff *
                                       (std::fabs(c_init[i * ldc + j]) + std::fabs(c[i * ldc + j]));
                    if (std::fabs(got - expect) > tol) ++acc_bad;
                }
            }
            check(acc_bad == 0, "%s dot_tile kc=%zu mr=%zu accumulate: %zu cells wrong", level, kc,
                  mr, acc_bad);
        }

        // The same q row at another position in the tile gives the same bits.
        if (mr_max >= 2 && !full.empty()) {
            std::vector<float> c(mr_max * ldc, kSentinel);
            t.dot_tile(q_full.data() + ldq, ldq, mr_max - 1, panel.data(), kc, c.data(), ldc,
                       false);
            size_t bad = 0;
            for (size_t i = 0; i + 1 < mr_max; ++i) {
                for (size_t j = 0; j < nr; ++j) {
                    if (f32_to_bits(c[i * ldc + j]) != f32_to_bits(full[(i + 1) * ldc + j])) ++bad;
                }
            }
            check(bad == 0, "%s dot_tile kc=%zu: %zu cells change when rows shift up by one", level,
                  kc, bad);
        }
    }
}

// ---- driver -------------------------------------------------------------------------------------

void test_level(SimdLevel level, std::mt19937& rng) {
    const KernelTable* serial = table_for(SimdLevel::kSerial);
    const KernelTable* t = table_for(level);
    const char* name = level_name(level);
    const int failed_before = g_failed, passed_before = g_passed;
    check(t->level == level, "%s: table reports level %s", name, level_name(t->level));
    const std::vector<Case> cases = valid_cases(*serial, *t, name);
    // A fault outside the calls that check for one ends that section, not the whole run.
    const auto section = [&](const char* what, auto&& body) {
        check(run_guarded(body), "%s: fault (out-of-bounds access) in %s tests", name, what);
    };
    section("random ManyFn", [&] { test_many_random(name, cases, rng); });
    section("zero-vector", [&] { test_zero_vectors(name, cases, rng); });
    section("non-finite", [&] { test_non_finite(name, cases, rng); });
    section("int8 extremes", [&] { test_int8_extremes(name, cases); });
    section("binary extremes", [&] { test_binary_extremes(name, cases); });
    section("to_f32", [&] { test_to_f32(name, *serial, *t, rng); });
    section("dot_tile", [&] { test_dot_tile(name, *serial, *t, rng); });
    std::printf("%s: %d passed, %d failed (features: %s)\n", name, g_passed - passed_before,
                g_failed - failed_before, t->features[0] ? t->features : "none");
}

int run(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // keep output whole if a kernel crashes the run
    install_fault_handlers();
    uint32_t seed = 20240611;
    if (const char* env = std::getenv("VECSTORE_SEED"))
        seed = static_cast<uint32_t>(std::strtoul(env, nullptr, 10));
    std::printf("kernel_parity_test: seed %u, best level %s\n", seed, level_name(best_level()));

    std::vector<std::string> required;
    for (int i = 1; i < argc; ++i) {
        const char* prefix = "--require=";
        if (std::strncmp(argv[i], prefix, std::strlen(prefix)) == 0) {
            required.push_back(argv[i] + std::strlen(prefix));
        } else {
            std::printf("usage: %s [--require=LEVEL ...]\n", argv[0]);
            return 2;
        }
    }
    for (const std::string& r : required) {
        SimdLevel level;
        const bool known = parse_level(r.c_str(), &level);
        check(known && table_for(level) != nullptr, "required level %s is not available",
              r.c_str());
    }

    int tested = 0;
    for (SimdLevel level : {SimdLevel::kAvx2, SimdLevel::kAvx512, SimdLevel::kNeon}) {
        if (table_for(level) == nullptr) {
            std::printf("%s: not available on this CPU/build, skipped\n", level_name(level));
            continue;
        }
        std::mt19937 rng(seed);
        test_level(level, rng);
        ++tested;
    }
    if (tested == 0) std::printf("no SIMD level to compare with serial\n");
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace distance
}  // namespace vecstore

int main(int argc, char** argv) { return vecstore::distance::run(argc, argv); }
