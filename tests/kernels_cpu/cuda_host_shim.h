// Compiles the CUDA kernels in kernels/*.cu (and any kernel source string) as plain C++
// with g++, so they run on a machine without a GPU.
//
// Two ways to run a kernel:
//
// * serially (tests/test_kernels_cpu.py): gg_shim_set_launch(block, thread, grid, block)
//   sets the launch coordinates and the test calls the kernel once per (block, thread).
//   Exact for grid-stride kernels without barriers or warp intrinsics.
// * as a CUDA launch (gg_emu_launch, used by the mock CuPy in tests/mock_cupy): every
//   block's threads run as cooperating fibers, so __syncthreads() is a real barrier and
//   the warp intrinsics exchange values between the 32 lanes of a warp; __shared__ memory
//   is per block (the mock's compile step rewrites `__shared__` declarations into
//   gg_emu_shared slots) and filled with 0xff bytes (NaN) when a block starts, so a read
//   before the block wrote it shows; block order and the order in which a block's fibers
//   run between barriers are shuffled by a seed. A barrier or warp intrinsic that not all
//   threads reach (a deadlock on the GPU, or undefined behaviour) is reported as an error.
#pragma once
#define GG_HOST_SHIM 1

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ucontext.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

struct gg_shim_dim3 {
    unsigned int x, y, z;
};

// -- the emulated device's thread state ---------------------------------------------------
namespace gg_emu {

enum Wait { RUNNABLE = 0, AT_BARRIER = 1, AT_WARP = 2, DONE = 3 };

struct Fiber {
    ucontext_t uc;
    jmp_buf jb;
    bool started;
    int wait;
    unsigned int warp_mask;  // the mask of the warp intrinsic this lane waits at
    gg_shim_dim3 tid;
    unsigned int linear;  // threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)
    unsigned int count;   // warp intrinsics passed (selects the exchange buffer)
    char* stack;
};

struct State {
    gg_shim_dim3 thread_idx, block_idx, block_dim, grid_dim;
};

// The serial path's coordinates (gg_shim_set_launch) and the running fiber, if any.
static thread_local State serial = {{0, 0, 0}, {0, 0, 0}, {1, 1, 1}, {1, 1, 1}};
static thread_local Fiber* current = nullptr;
static thread_local gg_shim_dim3 block_idx = {0, 0, 0};
static thread_local gg_shim_dim3 block_dim = {1, 1, 1};
static thread_local gg_shim_dim3 grid_dim = {1, 1, 1};
static thread_local bool in_launch = false;

static thread_local Fiber* fibers = nullptr;
static thread_local unsigned int nthreads = 0;
static thread_local size_t fiber_capacity = 0;
static thread_local jmp_buf sched_jb;
static thread_local char error[512];
static thread_local void (*entry)(void) = nullptr;

// Warp exchange buffers: [parity][lane] per warp (64-bit values).
static thread_local unsigned long long* exchange = nullptr;

// The shared-memory race checker's shadow, one entry per 4-byte word of shared memory:
// the barrier epoch and thread of the last write, and the epoch and warp of the last read
// (warp -2: several warps read it). Epochs count the block's barriers.
struct Shadow {
    unsigned int w_epoch, w_thread, r_epoch;
    int r_warp;
};
static thread_local Shadow* shadow = nullptr;
static thread_local unsigned int epoch = 1;

// Per-block shared memory: static __shared__ slots by tag, then the dynamic part.
static thread_local char* shared = nullptr;
static thread_local size_t shared_capacity = 0, shared_used = 0, dyn_shared = 0;
static thread_local const void* slot_tag[64];
static thread_local size_t slot_off[64];
static thread_local int nslots = 0;

inline unsigned int lane() { return current->linear & 31u; }
inline unsigned int warp() { return current->linear >> 5; }

[[noreturn]] inline void fail(const char* msg) {
    if (!error[0]) snprintf(error, sizeof error, "%s", msg);
    _longjmp(sched_jb, 2);
}

// Give the CPU back to the scheduler until this fiber may continue.
inline void yield(int wait) {
    current->wait = wait;
    if (!_setjmp(current->jb)) _longjmp(sched_jb, 1);
}

}  // namespace gg_emu

#define threadIdx (gg_emu::current ? gg_emu::current->tid : gg_emu::serial.thread_idx)
#define blockIdx (gg_emu::in_launch ? gg_emu::block_idx : gg_emu::serial.block_idx)
#define blockDim (gg_emu::in_launch ? gg_emu::block_dim : gg_emu::serial.block_dim)
#define gridDim (gg_emu::in_launch ? gg_emu::grid_dim : gg_emu::serial.grid_dim)
#define warpSize 32

extern "C" void gg_shim_set_launch(unsigned int block, unsigned int thread,
                                   unsigned int grid_dim, unsigned int block_dim) {
    gg_emu::serial.block_idx.x = block;
    gg_emu::serial.thread_idx.x = thread;
    gg_emu::serial.grid_dim.x = grid_dim;
    gg_emu::serial.block_dim.x = block_dim;
}

// -- barriers, warp intrinsics, shared memory ------------------------------------------------
inline void __syncthreads() {
    if (!gg_emu::current) return;  // serial path: nothing to wait for
    gg_emu::yield(gg_emu::AT_BARRIER);
}
inline void __syncwarp(unsigned int mask = 0xffffffffu) {
    if (!gg_emu::current) return;
    gg_emu::current->warp_mask = mask;
    gg_emu::yield(gg_emu::AT_WARP);
}

namespace gg_emu {
// Every lane of `mask` publishes `v`; returns the warp's buffer of published values once
// all of them have arrived.
inline unsigned long long* warp_exchange(unsigned int mask, unsigned long long v) {
    if (!current) fail("a warp intrinsic ran outside an emulated launch (serial shim path)");
    if (!(mask >> lane() & 1u)) fail("a warp intrinsic's mask does not contain the calling lane");
    unsigned long long* buf = exchange + ((size_t)warp() * 2 + (current->count & 1u)) * 32;
    buf[lane()] = v;
    current->warp_mask = mask;
    current->count++;
    yield(AT_WARP);
    return buf;
}

template <typename T> inline unsigned long long to_bits(T v) {
    unsigned long long u = 0;
    static_assert(sizeof(T) <= 8, "warp shuffle of a type wider than 64 bits");
    std::memcpy(&u, &v, sizeof v);
    return u;
}
template <typename T> inline T from_bits(unsigned long long u) {
    T v;
    std::memcpy(&v, &u, sizeof v);
    return v;
}

template <typename T> inline T shfl_from(unsigned int mask, T v, int src) {
    unsigned long long* buf = warp_exchange(mask, to_bits(v));
    if (src < 0 || src > 31 || !(mask >> src & 1u)) return v;  // outside: own value, as CUDA
    return from_bits<T>(buf[src]);
}

inline void* shared_slot(const void* tag, size_t size, size_t align) {
    for (int i = 0; i < nslots; ++i)
        if (slot_tag[i] == tag) return shared + slot_off[i];
    if (nslots == 64) fail("more than 64 __shared__ variables");
    size_t off = (shared_used + align - 1) / align * align;
    if (off + size > shared_capacity) fail("static __shared__ memory exceeds the emulator's 96 KiB");
    slot_tag[nslots] = tag;
    slot_off[nslots++] = off;
    shared_used = off + size;
    return shared + off;
}
}  // namespace gg_emu

template <typename T> inline T& gg_emu_shared(const void* tag) {
    return *static_cast<T*>(gg_emu::shared_slot(tag, sizeof(T), alignof(T)));
}
inline void* gg_emu_dynamic_shared() {
    return gg_emu::shared + gg_emu::shared_capacity - gg_emu::dyn_shared;
}

// Checked access to a static __shared__ array (the mock's compile step declares them as
// gg_sview): between two barriers, a word written by two threads, read by a thread of
// another warp than its writer's, or written after another warp read it, is a data race
// (CUDA orders shared memory between warps only through barriers) and fails the launch.
namespace gg_emu {
[[noreturn]] void race(const char* what, const void* p, const char* who, int other);

inline void on_write(const void* p) {
    if (!current) return;
    Shadow& s = shadow[(static_cast<const char*>(p) - shared) / 4];
    if (s.w_epoch == epoch && s.w_thread != current->linear)
        race("wrote", p, "thread", (int)s.w_thread);
    if (s.r_epoch == epoch && s.r_warp != (int)warp())
        race("wrote", p, s.r_warp == -2 ? "several warps" : "warp", s.r_warp);
    s.w_epoch = epoch;
    s.w_thread = current->linear;
}

inline void on_read(const void* p) {
    if (!current) return;
    Shadow& s = shadow[(static_cast<const char*>(p) - shared) / 4];
    if (s.w_epoch == epoch && (s.w_thread >> 5) != warp())
        race("read", p, "thread", (int)s.w_thread);
    if (s.r_epoch != epoch) {
        s.r_epoch = epoch;
        s.r_warp = (int)warp();
    } else if (s.r_warp != (int)warp()) {
        s.r_warp = -2;
    }
}
}  // namespace gg_emu

template <typename T> struct gg_sref {
    T* p;
    operator T() const {
        gg_emu::on_read(p);
        return *p;
    }
    gg_sref& operator=(T v) {
        gg_emu::on_write(p);
        *p = v;
        return *this;
    }
    gg_sref& operator=(const gg_sref& o) { return *this = T(o); }
    gg_sref& operator+=(T v) { return *this = T(*this) + v; }
    gg_sref& operator-=(T v) { return *this = T(*this) - v; }
    gg_sref& operator*=(T v) { return *this = T(*this) * v; }
};

template <typename T, unsigned long long... Dims> struct gg_sview;
template <typename T, unsigned long long N> struct gg_sview<T, N> {
    T* base;
    gg_sref<T> operator[](long long i) const { return gg_sref<T>{base + i}; }
};
template <typename T, unsigned long long N, unsigned long long M, unsigned long long... Rest>
struct gg_sview<T, N, M, Rest...> {
    T* base;
    gg_sview<T, M, Rest...> operator[](long long i) const {
        return gg_sview<T, M, Rest...>{base + i * (M * ... * Rest)};
    }
};

template <typename T> inline T __shfl_sync(unsigned int mask, T v, int src, int width = 32) {
    (void)width;
    return gg_emu::shfl_from(mask, v, src & 31);
}
template <typename T> inline T __shfl_xor_sync(unsigned int mask, T v, int m, int width = 32) {
    (void)width;
    return gg_emu::shfl_from(mask, v, (int)(gg_emu::lane() ^ (unsigned)m));
}
template <typename T> inline T __shfl_down_sync(unsigned int mask, T v, unsigned int d,
                                                int width = 32) {
    (void)width;
    int src = (int)(gg_emu::lane() + d);
    return src > 31 ? gg_emu::shfl_from(mask, v, (int)gg_emu::lane())
                    : gg_emu::shfl_from(mask, v, src);
}
template <typename T> inline T __shfl_up_sync(unsigned int mask, T v, unsigned int d,
                                              int width = 32) {
    (void)width;
    int src = (int)gg_emu::lane() - (int)d;
    return gg_emu::shfl_from(mask, v, src < 0 ? (int)gg_emu::lane() : src);
}
inline unsigned int __ballot_sync(unsigned int mask, int pred) {
    unsigned long long* buf = gg_emu::warp_exchange(mask, pred != 0);
    unsigned int out = 0;
    for (int l = 0; l < 32; ++l)
        if ((mask >> l & 1u) && buf[l]) out |= 1u << l;
    return out;
}
inline int __any_sync(unsigned int mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned int mask, int pred) { return __ballot_sync(mask, pred) == mask; }

// Atomics: one OS thread runs a launch and fibers switch only at barriers and warp
// intrinsics, so plain read-modify-writes are atomic here.
template <typename T> inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
template <typename T> inline T atomicMax(T* p, T v) { T old = *p; *p = old < v ? v : old; return old; }
template <typename T> inline T atomicMin(T* p, T v) { T old = *p; *p = v < old ? v : old; return old; }
template <typename T> inline T atomicExch(T* p, T v) { T old = *p; *p = v; return old; }
template <typename T> inline T atomicCAS(T* p, T cmp, T v) {
    T old = *p;
    if (old == cmp) *p = v;
    return old;
}
inline void __threadfence() {}
inline void __threadfence_block() {}

// -- the launcher --------------------------------------------------------------------------
namespace gg_emu {

static constexpr size_t STACK = 64 * 1024;
static constexpr size_t SHARED = 96 * 1024;

// The kernel's arguments in x86-64 System V registers and stack slots: the caller (the
// mock's launch) classifies each argument, so one call through this prototype passes any
// signature of pointers, integers and doubles (at most 64 stack slots). The stack slots
// travel as one struct by value: an aggregate this large is passed in memory, copied to
// where the first stack-passed argument goes, so its words are the callee's stack
// arguments in order.
static constexpr int STACK_SLOTS = 64;
struct StackArgs {
    long long slot[STACK_SLOTS];
};
typedef void (*AnyKernel)(long long, long long, long long, long long, long long, long long,
                          double, double, double, double, double, double, double, double,
                          StackArgs);
static thread_local AnyKernel kernel_fn;
static thread_local const long long* kernel_ints;
static thread_local const double* kernel_dbls;
static thread_local const long long* kernel_stack;

static void run_kernel() {
    const long long* i = kernel_ints;
    const double* d = kernel_dbls;
    StackArgs s;
    std::memcpy(s.slot, kernel_stack, sizeof s.slot);
    kernel_fn(i[0], i[1], i[2], i[3], i[4], i[5], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
              d[7], s);
}

static void fiber_main() {
    run_kernel();
    current->wait = DONE;
    _longjmp(sched_jb, 1);
}

static unsigned long long splitmix(unsigned long long& s) {
    unsigned long long z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

template <typename T> static void shuffle(T* a, size_t n, unsigned long long& s) {
    for (size_t k = n; k > 1; --k) std::swap(a[k - 1], a[splitmix(s) % k]);
}

[[noreturn]] void race(const char* what, const void* p, const char* who, int other) {
    unsigned long long off = (unsigned long long)(static_cast<const char*>(p) - shared);
    const char* name = "?";
    unsigned long long best = 0;
    for (int i = 0; i < nslots; ++i)  // the __shared__ variable holding the word
        if (slot_off[i] <= off && slot_off[i] >= best) {
            best = slot_off[i];
            name = static_cast<const char*>(slot_tag[i]);  // the tag is the name
        }
    char by[48];
    if (other >= 0) snprintf(by, sizeof by, "%s %d", who, other);
    else snprintf(by, sizeof by, "%s", who);
    snprintf(error, sizeof error,
             "shared-memory data race in block (%u,%u,%u): thread %u %s byte %llu of "
             "__shared__ %s, which %s %s since the last __syncthreads()",
             block_idx.x, block_idx.y, block_idx.z, current->linear, what, off - best, name,
             by, what[0] == 'r' || who[0] == 't' ? "wrote" : "read");
    _longjmp(sched_jb, 2);
}

// Runs one block to completion; 0, or -1 with `error` set.
static int run_block(unsigned int* order, unsigned long long& rng) {
    nslots = 0;
    shared_used = 0;
    std::memset(shared, 0xff, SHARED);
    std::memset(shadow, 0, (shared_capacity / 4) * sizeof(Shadow));
    epoch = 1;
    for (unsigned int t = 0; t < nthreads; ++t) {
        Fiber& f = fibers[t];
        f.started = false;
        f.wait = RUNNABLE;
        f.count = 0;
        f.linear = t;
        f.tid.x = t % block_dim.x;
        f.tid.y = (t / block_dim.x) % block_dim.y;
        f.tid.z = t / (block_dim.x * block_dim.y);
    }
    for (;;) {
        shuffle(order, nthreads, rng);
        bool progressed = false;
        for (unsigned int k = 0; k < nthreads; ++k) {
            Fiber& f = fibers[order[k]];
            if (f.wait != RUNNABLE) continue;
            progressed = true;
            current = &f;
            int r = _setjmp(sched_jb);
            if (r == 0) {
                if (!f.started) {
                    f.started = true;
                    getcontext(&f.uc);
                    f.uc.uc_stack.ss_sp = f.stack;
                    f.uc.uc_stack.ss_size = STACK;
                    f.uc.uc_link = nullptr;
                    makecontext(&f.uc, fiber_main, 0);
                    ucontext_t here;
                    swapcontext(&here, &f.uc);
                } else {
                    _longjmp(f.jb, 1);
                }
            }
            current = nullptr;
            if (r == 2) return -1;
        }
        // Release warps whose every lane waits at a warp intrinsic, and the block once every
        // thread waits at the barrier or has finished.
        unsigned int nwarps = (nthreads + 31) / 32, done = 0, at_barrier = 0;
        for (unsigned int w = 0; w < nwarps; ++w) {
            unsigned int lo = w * 32, hi = std::min(nthreads, lo + 32), waiting = 0;
            unsigned int mask = 0;
            bool all = true;
            for (unsigned int t = lo; t < hi; ++t) {
                if (fibers[t].wait == AT_WARP) {
                    waiting |= 1u << (t - lo);
                    mask = fibers[t].warp_mask;
                } else {
                    all = false;
                }
            }
            if (!waiting) continue;
            if ((waiting & mask) == mask || all) {
                for (unsigned int t = lo; t < hi; ++t)
                    if (fibers[t].wait == AT_WARP && (fibers[t].warp_mask & waiting) == fibers[t].warp_mask) {
                        fibers[t].wait = RUNNABLE;
                        progressed = true;
                    }
            }
        }
        for (unsigned int t = 0; t < nthreads; ++t) {
            done += fibers[t].wait == DONE;
            at_barrier += fibers[t].wait == AT_BARRIER;
        }
        if (done == nthreads) return 0;
        if (at_barrier && at_barrier + done == nthreads) {
            if (done) {
                snprintf(error, sizeof error,
                         "block (%u,%u,%u): %u threads wait at __syncthreads() that %u "
                         "threads of the block never reach (they returned)",
                         block_idx.x, block_idx.y, block_idx.z, at_barrier, done);
                return -1;
            }
            for (unsigned int t = 0; t < nthreads; ++t) fibers[t].wait = RUNNABLE;
            ++epoch;
            continue;
        }
        if (!progressed) {
            unsigned int at_warp = nthreads - done - at_barrier;
            snprintf(error, sizeof error,
                     "block (%u,%u,%u): deadlock: %u threads at __syncthreads(), %u at a warp "
                     "intrinsic whose lanes do not all arrive, %u finished",
                     block_idx.x, block_idx.y, block_idx.z, at_barrier, at_warp, done);
            return -1;
        }
    }
}

}  // namespace gg_emu

// Launch `fn` on a grid x block with `dyn_shared` bytes of dynamic shared memory; the
// arguments are already classified into 6 integer registers, 8 double registers and up to
// 64 stack slots. Returns 0, or -1 with a message in gg_emu_error().
extern "C" int gg_emu_launch(void* fn, const unsigned int* grid, const unsigned int* block,
                             unsigned long long dyn_shared, const long long* ints,
                             const double* dbls, const long long* stack,
                             unsigned long long seed) {
    using namespace gg_emu;
    error[0] = 0;
    unsigned long long n = (unsigned long long)block[0] * block[1] * block[2];
    if (n == 0 || n > 1024 || block[2] > 64 || grid[0] == 0 || grid[1] == 0 || grid[2] == 0
        || grid[1] > 65535 || grid[2] > 65535) {
        snprintf(error, sizeof error, "invalid launch configuration: grid (%u,%u,%u), block "
                 "(%u,%u,%u)", grid[0], grid[1], grid[2], block[0], block[1], block[2]);
        return -1;
    }
    if (dyn_shared > 48 * 1024) {
        snprintf(error, sizeof error, "dynamic shared memory of %llu bytes exceeds 48 KiB",
                 dyn_shared);
        return -1;
    }
    if (fiber_capacity < n) {
        for (size_t t = 0; t < fiber_capacity; ++t) std::free(fibers[t].stack);
        std::free(fibers);
        std::free(exchange);
        fibers = static_cast<Fiber*>(std::calloc(n, sizeof(Fiber)));
        exchange = static_cast<unsigned long long*>(std::calloc(n * 2 + 64, 8));
        for (size_t t = 0; t < n; ++t) fibers[t].stack = static_cast<char*>(std::malloc(STACK));
        fiber_capacity = n;
    }
    if (!shared) {
        shared = static_cast<char*>(std::malloc(SHARED + 48 * 1024));
        shared_capacity = SHARED + 48 * 1024;
        shadow = static_cast<Shadow*>(std::calloc(shared_capacity / 4, sizeof(Shadow)));
    }
    gg_emu::dyn_shared = dyn_shared;
    nthreads = (unsigned int)n;
    kernel_fn = reinterpret_cast<AnyKernel>(fn);
    kernel_ints = ints;
    kernel_dbls = dbls;
    kernel_stack = stack;
    block_dim = {block[0], block[1], block[2]};
    grid_dim = {grid[0], grid[1], grid[2]};
    unsigned long long total = (unsigned long long)grid[0] * grid[1] * grid[2];
    unsigned long long* blocks = static_cast<unsigned long long*>(std::malloc(total * 8));
    unsigned int* order = static_cast<unsigned int*>(std::malloc(n * sizeof(unsigned int)));
    for (unsigned long long b = 0; b < total; ++b) blocks[b] = b;
    for (unsigned int t = 0; t < n; ++t) order[t] = t;
    unsigned long long rng = seed;
    if (seed) shuffle(blocks, total, rng);
    in_launch = true;
    int rc = 0;
    for (unsigned long long k = 0; k < total && rc == 0; ++k) {
        unsigned long long b = blocks[k];
        block_idx = {(unsigned int)(b % grid[0]), (unsigned int)(b / grid[0] % grid[1]),
                     (unsigned int)(b / ((unsigned long long)grid[0] * grid[1]))};
        rc = run_block(order, rng);
    }
    in_launch = false;
    current = nullptr;
    std::free(blocks);
    std::free(order);
    return rc;
}

extern "C" const char* gg_emu_error() { return gg_emu::error; }

// CUDA intrinsics and math functions that the C library lacks.
inline float __uint_as_float(unsigned int u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}
inline unsigned int __float_as_uint(float f) {
    unsigned int u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}
inline double __longlong_as_double(long long u) {
    double d;
    std::memcpy(&d, &u, sizeof d);
    return d;
}
inline long long __double_as_longlong(double d) {
    long long u;
    std::memcpy(&u, &d, sizeof u);
    return u;
}
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
// CUDA's erfinv (no C++ library has one): Newton steps on erf(y) = |v| (on erfc(y) = 1 - |v|
// above 1/2, where 1 - |v| is exact and erf would lose the tail) from a rough start.
inline double erfinv(double v) {
    if (!(v > -1.0 && v < 1.0))
        return (v == 1.0 || v == -1.0) ? std::copysign(INFINITY, v) : NAN;
    const double a = std::fabs(v), w = -std::log((1.0 - a) * (1.0 + a));
    double y = w < 1.0 ? 0.886226925452758 * a : std::sqrt(w) * (w < 5.0 ? 0.886 : 0.95);
    for (int k = 0; k < 60; ++k) {
        const double r = a > 0.5 ? (1.0 - a) - std::erfc(y) : std::erf(y) - a;
        const double step = r / (1.1283791670955126 * std::exp(-y * y));
        y -= step;
        if (std::fabs(step) <= 1e-16 * std::fabs(y)) break;
    }
    return std::copysign(y, v);
}
inline float erfinvf(float v) { return (float)erfinv((double)v); }
inline float __expf(float x) { return std::exp(x); }
