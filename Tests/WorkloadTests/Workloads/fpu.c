/* fpu: two threads each load distinct values into the vector registers (zmm0-31 and
 * k1-k7 with AVX-512F, else ymm0-14), the x87 stack (8 values, non-default control
 * word) and MXCSR once, then loop in asm: compare every register against memory (never
 * reloading them), sleep 1 ms in a raw nanosleep syscall, repeat until told to stop.
 * Any change ends the loop with the failing register's number. No -m flags needed:
 * the asm sits in functions with target attributes; the AVX-512 path runs only where
 * the CPU has avx512f (else the AVX2 one). */
#include "workload.h"
#include <pthread.h>

struct fx { uint16_t fcw, fsw; uint8_t ftw, r0; uint16_t fop; uint64_t fip, fdp; uint32_t mxcsr, mxmask; unsigned char st[8][16]; unsigned char rest[512 - 160]; } __attribute__((aligned(64)));
struct ctx {
    unsigned char vec[32][64] __attribute__((aligned(64)));
    uint64_t kmask[8];
    long double x87[8];
    uint16_t fcw;
    uint32_t mxcsr;
    struct fx ref, cur, end;
    volatile int stop;
    volatile long bad; /* 0 ok; 1..32 vector reg+1; 40+k mask reg; 50 x87; 51 fcw; 52 mxcsr */
    volatile long rounds;
};
static struct timespec ms1 = { 0, 1000000 };

#define CMPZ(i) "vpcmpq $4, " #i "*64(%[v]), %%zmm" #i ", %%k0\n kortestw %%k0, %%k0\n mov $" #i "+1, %%eax\n jnz 9f\n"
#define CMPY(i) "vpxor " #i "*32(%[v]), %%ymm" #i ", %%ymm15\n vptest %%ymm15, %%ymm15\n mov $" #i "+1, %%eax\n jnz 9f\n"
#define LDZ(i) "vmovdqa64 " #i "*64(%[v]), %%zmm" #i "\n"
#define LDY(i) "vmovdqa " #i "*32(%[v]), %%ymm" #i "\n"
#define K(i) "kmovw " #i "*8(%[k]), %%k" #i "\n"
#define CK(i) "kmovw %%k" #i ", %%eax\n cmpw %%ax, " #i "*8(%[k])\n mov $40+" #i ", %%eax\n jne 9f\n"
#define X87LOAD "fninit\n fldcw %[fcw]\n ldmxcsr %[mx]\n" \
    "fldt 0(%[x])\n fldt 16(%[x])\n fldt 32(%[x])\n fldt 48(%[x])\n fldt 64(%[x])\n fldt 80(%[x])\n fldt 96(%[x])\n fldt 112(%[x])\n fxsave (%[ref])\n"
#define ST(off) "mov " #off "(%[cur]), %%rax\n cmp " #off "(%[ref]), %%rax\n jne 7f\n"
#define X87CHECK "fxsave (%[cur])\n" ST(32) ST(48) ST(64) ST(80) ST(96) ST(112) ST(128) ST(144) \
    "movzwl (%[cur]), %%eax\n cmpw (%[ref]), %%ax\n mov $51, %%eax\n jne 9f\n" \
    "mov 24(%[cur]), %%eax\n cmp 24(%[ref]), %%eax\n mov $52, %%eax\n jne 9f\n"
#define SLEEP_AND_LOOP "incq %[rounds]\n cmpl $0, %[stop]\n jne 6f\n" \
    "mov $35, %%eax\n lea %[ts], %%rdi\n xor %%esi, %%esi\n syscall\n jmp 1b\n" \
    "7: mov $50, %%eax\n jmp 9f\n 6: xor %%eax, %%eax\n 9: fxsave (%[end])\n fninit\n ldmxcsr %[mxdef]\n vzeroupper\n"
#define ASM_OPS : [rounds] "+m"(c->rounds), "=&a"(r) \
    : [v] "r"(c->vec), [k] "r"(c->kmask), [x] "r"(c->x87), [ref] "r"(&c->ref), [cur] "r"(&c->cur), [end] "r"(&c->end), \
      [fcw] "m"(c->fcw), [mx] "m"(c->mxcsr), [mxdef] "m"(mxcsr_default), [stop] "m"(c->stop), [ts] "m"(ms1)
static const uint32_t mxcsr_default = 0x1f80;

__attribute__((target("avx512f"))) static long run_avx512(struct ctx *c)
{
    long r;
    __asm__ volatile(
        X87LOAD
        LDZ(0) LDZ(1) LDZ(2) LDZ(3) LDZ(4) LDZ(5) LDZ(6) LDZ(7) LDZ(8) LDZ(9) LDZ(10) LDZ(11) LDZ(12) LDZ(13) LDZ(14) LDZ(15)
        LDZ(16) LDZ(17) LDZ(18) LDZ(19) LDZ(20) LDZ(21) LDZ(22) LDZ(23) LDZ(24) LDZ(25) LDZ(26) LDZ(27) LDZ(28) LDZ(29) LDZ(30) LDZ(31)
        K(1) K(2) K(3) K(4) K(5) K(6) K(7)
        "1:\n"
        CMPZ(0) CMPZ(1) CMPZ(2) CMPZ(3) CMPZ(4) CMPZ(5) CMPZ(6) CMPZ(7) CMPZ(8) CMPZ(9) CMPZ(10) CMPZ(11) CMPZ(12) CMPZ(13) CMPZ(14) CMPZ(15)
        CMPZ(16) CMPZ(17) CMPZ(18) CMPZ(19) CMPZ(20) CMPZ(21) CMPZ(22) CMPZ(23) CMPZ(24) CMPZ(25) CMPZ(26) CMPZ(27) CMPZ(28) CMPZ(29) CMPZ(30) CMPZ(31)
        CK(1) CK(2) CK(3) CK(4) CK(5) CK(6) CK(7)
        X87CHECK
        SLEEP_AND_LOOP
        ASM_OPS
        : "rcx", "rdx", "rsi", "rdi", "r11", "memory", "cc", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7",
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
          "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31",
          "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
    return r;
}

__attribute__((target("avx2"))) static long run_avx2(struct ctx *c)
{
    long r;
    __asm__ volatile(
        X87LOAD
        LDY(0) LDY(1) LDY(2) LDY(3) LDY(4) LDY(5) LDY(6) LDY(7) LDY(8) LDY(9) LDY(10) LDY(11) LDY(12) LDY(13) LDY(14)
        "1:\n"
        CMPY(0) CMPY(1) CMPY(2) CMPY(3) CMPY(4) CMPY(5) CMPY(6) CMPY(7) CMPY(8) CMPY(9) CMPY(10) CMPY(11) CMPY(12) CMPY(13) CMPY(14)
        X87CHECK
        SLEEP_AND_LOOP
        ASM_OPS
        : "rcx", "rdx", "rsi", "rdi", "r11", "memory", "cc",
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
          "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
    return r;
}

static int avx512;
static void *thread_main(void *arg)
{
    struct ctx *c = arg;
    c->bad = avx512 ? run_avx512(c) : run_avx2(c);
    return NULL;
}

static void init_ctx(struct ctx *c, uint64_t seed)
{
    uint64_t s = seed;
    for (int i = 0; i < 32; i++)
        for (int j = 0; j < 64; j += 8) { uint64_t v = wl_xorshift(&s); memcpy(&c->vec[i][j], &v, 8); }
    for (int i = 0; i < 8; i++) {
        c->kmask[i] = wl_xorshift(&s) & 0xffff;
        c->x87[i] = (long double)(int64_t)wl_xorshift(&s) / 3.0L;
    }
    c->fcw = 0x0f7f;   /* round toward zero, 64-bit precision, exceptions masked */
    c->mxcsr = 0x9fc0 | (seed & 1 ? 0x2000 : 0x4000); /* FTZ|DAZ, masked, rounding down/up */
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f");
    if (!__builtin_cpu_supports("avx2")) { wl_fail("CPU has no AVX2"); wl_finish(); }
    static struct ctx c[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        init_ctx(&c[i], 0x1111111111111111ULL * (uint64_t)(i + 3));
        pthread_create(&th[i], NULL, thread_main, &c[i]);
    }
    while (c[0].rounds < 3 || c[1].rounds < 3) wl_sleep_ms(1);
    wl_ready();
    wl_wait_go();

    long r0[2] = { c[0].rounds, c[1].rounds };
    double deadline = wl_now() + 3;
    while ((c[0].rounds < r0[0] + 20 || c[1].rounds < r0[1] + 20) && wl_now() < deadline) wl_sleep_ms(5);
    for (int i = 0; i < 2; i++) c[i].stop = 1;
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        long b = c[i].bad;
        if (b > 0 && b <= 32) wl_fail("thread %d: %s%ld changed (round %ld)", i, avx512 ? "zmm" : "ymm", b - 1, c[i].rounds);
        else if (b >= 40 && b < 48) wl_fail("thread %d: k%ld changed", i, b - 40);
        else if (b == 50) wl_fail("thread %d: an x87 register changed", i);
        else if (b == 51) wl_fail("thread %d: x87 control word 0x%x, want 0x%x", i, c[i].cur.fcw, c[i].ref.fcw);
        else if (b == 52) wl_fail("thread %d: MXCSR 0x%x, want 0x%x", i, c[i].cur.mxcsr, c[i].ref.mxcsr);
        else if (b) wl_fail("thread %d: check %ld failed", i, b);
        else if (c[i].rounds < r0[i] + 20) wl_fail("thread %d: checking loop stalled at round %ld", i, c[i].rounds);
        else if (memcmp(c[i].end.st, c[i].ref.st, sizeof c[i].ref.st) || c[i].end.ftw != c[i].ref.ftw)
            wl_fail("thread %d: x87 stack/tags differ at the end", i);
    }
    wl_finish();
}
