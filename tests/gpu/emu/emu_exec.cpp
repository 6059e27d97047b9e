/* emu_exec.cpp: running a grid: threads as fibers, blocks in a shuffled
 * order, shared memory (sized, limited, poisoned), barriers and shuffles.
 *
 * Each CUDA thread of a block is a fiber with its own stack. The scheduler
 * runs every runnable fiber until it waits at a barrier (__syncthreads: the
 * block's; a shuffle: its mask's lanes) or returns; a block barrier releases
 * when all threads still running have arrived, as on the hardware, where
 * exited threads no longer count. Passes alternate forward and reverse
 * thread order, so a missing barrier between a write and a read by another
 * thread reads garbage in one of them. Blocks run one at a time in an order
 * shuffled per launch (EMU_SEED picks the shuffle), with shared memory
 * poisoned before each, so a kernel that counts on block order or on shared
 * memory surviving from one block to the next fails. */
#include "emu_internal.h"

#include <algorithm>
#include <deque>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unordered_map>
#include <vector>

thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define ASAN_START(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define ASAN_FINISH(save, bottom, size) __sanitizer_finish_switch_fiber(save, bottom, size)
#define ASAN_POISON(p, n) __asan_poison_memory_region(p, n)
#define ASAN_UNPOISON(p, n) __asan_unpoison_memory_region(p, n)
#else
#define ASAN_START(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define ASAN_FINISH(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define ASAN_POISON(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define FIBER_STACK ((size_t)256 << 10)
#define DEFAULT_SMEM 49152          /* per block without cudaFuncSetAttribute */
#define STATIC_AREA ((size_t)320 << 10) /* the device's 227 KB and redzones */
#define REDZONE 32

void emu_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "emu: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

/* ---------- context switch ----------
 * x86-64: callee-saved registers on the stack, then swap stack pointers; no
 * system call (swapcontext saves the signal mask: two syscalls per switch,
 * and ASan clears the whole target stack's shadow on each). */
#if defined(__x86_64__)
extern "C" void emu_switch(void **save_sp, void *load_sp);
__asm__(".text\n.globl emu_switch\n.type emu_switch,@function\nemu_switch:\n"
        "pushq %rbp\npushq %rbx\npushq %r12\npushq %r13\npushq %r14\npushq %r15\n"
        "movq %rsp, (%rdi)\nmovq %rsi, %rsp\n"
        "popq %r15\npopq %r14\npopq %r13\npopq %r12\npopq %rbx\npopq %rbp\nret\n"
        ".size emu_switch, .-emu_switch\n");
struct ctx {
    void *sp;
};
static void ctx_make(ctx *c, char *stack, size_t size, void (*entry)(void))
{
    void **sp = (void **)(stack + size); /* 16-aligned: entry starts as if called */
    *--sp = nullptr;
    *--sp = (void *)entry;
    for (int i = 0; i < 6; i++)
        *--sp = nullptr;
    c->sp = sp;
}
static void ctx_swap(ctx *from, ctx *to) { emu_switch(&from->sp, to->sp); }
#else
#include <ucontext.h>
struct ctx {
    ucontext_t uc;
};
static void ctx_make(ctx *c, char *stack, size_t size, void (*entry)(void))
{
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, entry, 0);
}
static void ctx_swap(ctx *from, ctx *to) { swapcontext(&from->uc, &to->uc); }
#endif

/* ---------- state of the running grid ---------- */

struct barrier_c {
    int active = 0, arrived = 0;
    unsigned long gen = 0;
    void release() { arrived = 0, gen++; }
};

/* one shuffle in progress in a warp: the lanes of its mask meet twice
 * (values written, values read) */
struct shfl_group {
    unsigned mask = 0;
    barrier_c bar;
};

struct fiber {
    ctx c;
    char *stack;
    int done;
    barrier_c *waiting;
    unsigned long wait_gen;
    void *fake; /* ASan's fake stack of this fiber */
};

/* what the emulation knows of a kernel */
struct kern_info {
    int dyn_limit = -1;    /* cudaFuncSetAttribute's value, -1: not set */
    long static_bytes = 0; /* static shared memory of the declarations run so far */
    std::vector<std::pair<const void *, size_t>> sites; /* declaration -> offset */
    std::vector<size_t> site_bytes;
};

struct launch_state {
    int nthreads, cur, killed;
    dim3 grid, block;
    size_t dyn;
    kern_info *kern;
    std::function<void()> *body;
    barrier_c blockbar;
    std::vector<std::deque<shfl_group>> warps; /* shuffles in progress, per warp (deque: stable) */
    std::vector<fiber> fibers;
    std::vector<uint64_t> slots;
    std::vector<unsigned char> smem;
    ctx sched;
    void *sched_fake;
    const void *sched_bottom;
    size_t sched_size;
};
static launch_state *g_launch;
static char *g_stacks;           /* 1024 fiber stacks, mapped once */
static char *g_stack_low[1024]; /* lowest address a fiber on stack t switched out at */
static std::unordered_map<const void *, kern_info> g_kerns;
alignas(64) static unsigned char g_static[STATIC_AREA];
static unsigned long g_launches;

/* from the running fiber back to the scheduler */
static void to_scheduler(int finishing)
{
    launch_state *L = g_launch;
    fiber *f = &L->fibers[L->cur];
    char here;
    if (&here < g_stack_low[L->cur])
        g_stack_low[L->cur] = &here;
    ASAN_START(finishing ? nullptr : &f->fake, L->sched_bottom, L->sched_size);
    ctx_swap(&f->c, &L->sched);
    ASAN_FINISH(f->fake, &L->sched_bottom, &L->sched_size);
}

static void barrier_wait(barrier_c *b)
{
    if (++b->arrived >= b->active) {
        b->release();
        return;
    }
    fiber *f = &g_launch->fibers[g_launch->cur];
    f->waiting = b;
    f->wait_gen = b->gen;
    to_scheduler(0);
}

/* Ends the grid now: the launch was invalid (found only when it ran). */
[[noreturn]] static void kill_launch(cudaError_t e)
{
    g_launch->killed = 1;
    emu_set_pending_error(e);
    to_scheduler(1);
    abort(); /* never resumed */
}

static void fiber_exit(launch_state *L, int t)
{
    L->fibers[t].done = 1;
    if (--L->blockbar.active <= L->blockbar.arrived && L->blockbar.arrived > 0)
        L->blockbar.release();
    int w = t / 32, lane = t % 32;
    for (shfl_group &g : L->warps[w])
        if ((g.mask >> lane & 1) && g.bar.arrived > 0)
            emu_die("thread %d (warp %d lane %d) of block (%u,%u,%u) exited while lanes of mask %#x wait for it "
                    "in a shuffle (the device hangs or reads garbage)", t, w, lane, blockIdx.x, blockIdx.y,
                    blockIdx.z, g.mask);
}

static void fiber_main(void)
{
    launch_state *L = g_launch;
    ASAN_FINISH(nullptr, &L->sched_bottom, &L->sched_size);
    (*L->body)();
    L = g_launch;
    fiber_exit(L, L->cur);
    to_scheduler(1);
}

void __syncthreads(void) { barrier_wait(&g_launch->blockbar); }

/* A shuffle: the mask must name this lane, the partner it reads, and only
 * lanes that exist and have not exited; the lanes meeting in one shuffle
 * agree on the mask. */
void emu_shfl_exchange(void *val, size_t bytes, unsigned mask, int lanemask)
{
    launch_state *L = g_launch;
    int t = L->cur, w = t / 32, lane = t % 32, base = w * 32;
    int nl = std::min(32, L->nthreads - base), partner = lane ^ lanemask;
    const char *bad = nullptr;
    if (bytes > 8 || lanemask < 0 || lanemask > 31)
        bad = "a shuffle of more than 8 bytes or a lane mask outside the warp";
    else if (!(mask >> lane & 1))
        bad = "the mask leaves out the calling lane";
    else if (!(mask >> partner & 1))
        bad = "the lane read from is not in the mask";
    for (int b = 0; !bad && b < 32; b++)
        if (mask >> b & 1 && (b >= nl || L->fibers[base + b].done))
            bad = b >= nl ? "the mask names a lane the block does not have" : "the mask names a lane that has exited";
    shfl_group *g = nullptr;
    for (shfl_group &x : L->warps[w]) {
        if (x.bar.arrived > 0 && (x.mask & mask) && x.mask != mask && !bad)
            bad = "lanes of one warp meet in a shuffle with different masks";
        if (x.mask == mask)
            g = &x;
    }
    if (bad)
        emu_die("__shfl_xor_sync(%#x, v, %d) in thread %d (warp %d lane %d) of block (%u,%u,%u): %s", mask, lanemask,
                t, w, lane, blockIdx.x, blockIdx.y, blockIdx.z, bad);
    if (!g) {
        L->warps[w].emplace_back();
        g = &L->warps[w].back();
        g->mask = mask;
    }
    g->bar.active = __builtin_popcount(mask);
    barrier_c *bar = &g->bar; /* stable: a warp has one group per mask while its lanes wait */
    memcpy(&L->slots[t], val, bytes);
    barrier_wait(bar);
    memcpy(val, &L->slots[base + partner], bytes);
    barrier_wait(bar);
}

void *emu_dyn_smem(void) { return g_launch->smem.data(); }

/* The limit a kernel's dynamic shared memory has: the attribute if set,
 * else what the 48 KB default leaves beside its static arrays. */
static long dyn_limit(const kern_info *k)
{
    return k->dyn_limit >= 0 ? k->dyn_limit : DEFAULT_SMEM - k->static_bytes;
}

static const char *smem_problem(const kern_info *k, size_t dyn)
{
    if (k->static_bytes > DEFAULT_SMEM)
        return "static shared memory above 48 KB (ptxas refuses it)";
    if ((long)dyn > dyn_limit(k))
        return k->dyn_limit >= 0 ? "dynamic shared memory above the kernel's cudaFuncSetAttribute limit"
                                 : "static + dynamic shared memory above the 48 KB default (no cudaFuncSetAttribute)";
    if (k->static_bytes + (long)(k->dyn_limit >= 0 ? k->dyn_limit : 0) > emu_smem_optin())
        return "static shared memory + the attribute's dynamic limit above the device's opt-in maximum";
    return nullptr;
}

void *emu_static_smem(const void *site, size_t bytes, size_t align)
{
    launch_state *L = g_launch;
    kern_info *k = L->kern;
    for (size_t i = 0; i < k->sites.size(); i++)
        if (k->sites[i].first == site)
            return g_static + k->sites[i].second;
    /* a new declaration: its place follows the others, after a redzone */
    size_t end = 0;
    for (size_t i = 0; i < k->sites.size(); i++)
        end = std::max(end, k->sites[i].second + k->site_bytes[i] + REDZONE);
    size_t off = (end + std::max(align, (size_t)16) - 1) / std::max(align, (size_t)16) * std::max(align, (size_t)16);
    k->sites.push_back({site, off});
    k->site_bytes.push_back(bytes);
    k->static_bytes += (long)bytes;
    const char *bad = off + bytes > STATIC_AREA ? "static shared memory above the device's maximum"
                                                : smem_problem(k, L->dyn);
    if (off + bytes <= STATIC_AREA)
        ASAN_UNPOISON(g_static + off, bytes); /* the layout stays for the kernel's next launches */
    if (bad) {
        fprintf(stderr, "emu: launch of a kernel with %ld bytes of static and %zu of dynamic shared memory: %s\n",
                k->static_bytes, L->dyn, bad);
        kill_launch(cudaErrorInvalidValue);
    }
    memset(g_static + off, 0xff, bytes);
    return g_static + off;
}

static void set_thread(launch_state *L, int t)
{
    L->cur = t;
    threadIdx = dim3(t % L->block.x, (t / L->block.x) % L->block.y, t / (L->block.x * L->block.y));
}

/* Shared memory of a new block: garbage on the device, NaN bytes here. The
 * gaps between static arrays are poisoned for ASan (redone only when
 * another kernel's layout takes the area). */
static const kern_info *g_static_owner;

static void poison_shared(launch_state *L)
{
    std::fill(L->smem.begin(), L->smem.end(), (unsigned char)0xff);
    kern_info *k = L->kern;
    if (g_static_owner != k) {
        ASAN_POISON(g_static, STATIC_AREA);
        for (size_t i = 0; i < k->sites.size(); i++)
            ASAN_UNPOISON(g_static + k->sites[i].second, k->site_bytes[i]);
        g_static_owner = k;
    }
    for (size_t i = 0; i < k->sites.size(); i++)
        memset(g_static + k->sites[i].second, 0xff, k->site_bytes[i]);
}

static void run_block(launch_state *L)
{
    int n = L->nthreads;
    L->blockbar = barrier_c();
    L->blockbar.active = n;
    for (auto &w : L->warps)
        w.clear();
    poison_shared(L);
    for (int t = 0; t < n; t++) {
        fiber *f = &L->fibers[t];
        f->stack = g_stacks + (size_t)t * FIBER_STACK;
        f->done = 0;
        f->waiting = nullptr;
        f->fake = nullptr;
        /* frames still live when the last fiber on this stack switched out
         * for good left their scope poisoning: clear it (only what was used) */
        char *top = f->stack + FIBER_STACK, *low = g_stack_low[t] ? g_stack_low[t] - 512 : top;
        if (low < f->stack)
            low = f->stack;
        ASAN_UNPOISON(low, (size_t)(top - low));
        g_stack_low[t] = top;
        ctx_make(&f->c, f->stack, FIBER_STACK, fiber_main);
    }
    int remaining = n;
    for (int pass = 0; remaining > 0 && !L->killed; pass++) {
        int progress = 0;
        for (int i = 0; i < n && !L->killed; i++) {
            int t = pass % 2 ? n - 1 - i : i;
            fiber *f = &L->fibers[t];
            if (f->done || (f->waiting && f->waiting->gen == f->wait_gen))
                continue;
            f->waiting = nullptr;
            set_thread(L, t);
            ASAN_START(&L->sched_fake, f->stack, FIBER_STACK);
            ctx_swap(&L->sched, &f->c);
            ASAN_FINISH(L->sched_fake, nullptr, nullptr);
            progress = 1;
            if (f->done)
                remaining--;
        }
        if (!progress)
            emu_die("deadlock in block (%u,%u,%u): %d threads wait at barriers that cannot release (a "
                    "__syncthreads some threads skip, or a shuffle whose lanes never all arrive)",
                    blockIdx.x, blockIdx.y, blockIdx.z, remaining);
    }
}

/* blocks in a shuffled order, the same for the same EMU_SEED and launch */
static std::vector<uint32_t> block_order(size_t nblocks)
{
    static unsigned long seed = getenv("EMU_SEED") ? strtoul(getenv("EMU_SEED"), nullptr, 0) : 1;
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + ++g_launches;
    std::vector<uint32_t> order(nblocks);
    for (size_t i = 0; i < nblocks; i++)
        order[i] = (uint32_t)i;
    for (size_t i = nblocks; i > 1; i--) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        std::swap(order[i - 1], order[(s >> 33) % i]);
    }
    return order;
}

static void run_grid(kern_info *k, dim3 grid, dim3 block, size_t smem, std::function<void()> &body)
{
    if (!g_stacks) {
        g_stacks = (char *)mmap(nullptr, 1024 * FIBER_STACK, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (g_stacks == MAP_FAILED)
            emu_die("cannot map fiber stacks");
    }
    int n = (int)(block.x * block.y * block.z);
    launch_state L;
    L.nthreads = n;
    L.killed = 0;
    L.grid = grid;
    L.block = block;
    L.dyn = smem;
    L.kern = k;
    L.body = &body;
    L.warps.assign((n + 31) / 32, std::deque<shfl_group>());
    L.fibers.assign(n, fiber());
    L.slots.assign(n, 0);
    L.smem.assign(smem ? smem : 1, 0);
    g_launch = &L;
    blockDim = block;
    gridDim = grid;
    std::vector<uint32_t> order = block_order((size_t)grid.x * grid.y * grid.z);
    for (uint32_t b : order) {
        blockIdx = dim3(b % grid.x, b / grid.x % grid.y, b / grid.x / grid.y);
        run_block(&L);
        if (L.killed)
            break;
    }
    g_launch = nullptr;
}

/* ---------- launches ---------- */

cudaError_t emu_set_smem_limit(const void *kern, int bytes)
{
    kern_info *k = &g_kerns[kern];
    if (bytes < 0 || k->static_bytes + bytes > emu_smem_optin())
        return cudaErrorInvalidValue;
    k->dyn_limit = bytes;
    return cudaSuccess;
}

void emu_launch(const void *kern, dim3 grid, dim3 block, size_t smem, cudaStream_t s, std::function<void()> body)
{
    if (emu_no_kernel_image()) {
        emu_set_last_error(cudaErrorNoKernelImageForDevice);
        return;
    }
    unsigned long threads = (unsigned long)block.x * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.x == 0 ||
        grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
        emu_set_last_error(cudaErrorInvalidConfiguration);
        return;
    }
    kern_info *k = &g_kerns[kern];
    if (smem_problem(k, smem)) {
        emu_set_last_error(cudaErrorInvalidValue);
        return;
    }
    emu_enqueue(s, [k, grid, block, smem, body]() mutable { run_grid(k, grid, block, smem, body); });
}
