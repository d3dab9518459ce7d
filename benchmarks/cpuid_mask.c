// A process that believes it runs on an AVX2-only x86 CPU: after bitmaps_mask_cpuid(), every CPUID
// instruction in the calling thread (and the threads it creates later) traps (Linux's CPUID
// faulting, arch_prctl ARCH_SET_CPUID, where /proc/cpuinfo lists `cpuid_fault`), and the SIGSEGV
// handler below runs the real CPUID and clears the feature bits an AVX2-only CPU (AMD Zen 3) does
// not report: AVX-512 and its extensions, GFNI, AVX-VNNI, AMX, and the ZMM and opmask state
// components. So a library that picks its kernels from CPUID when it loads, with no switch of its
// own (ONNX Runtime's MLAS, torch's fbgemm through cpuinfo), picks those it would on such a CPU.
// Preloaded (LD_PRELOAD) with BITMAPS_CPUID_MASK=avx2, it masks from the process's start, before any
// library loads, and so in every child process that inherits the two (timing.limit_peer_isa).
// Linux x86-64 only; a benchmark tool, not part of the runtime.
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static struct sigaction previous;
static volatile long trapped;

static long set_cpuid(int allowed) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, (unsigned long)allowed); }

static void mask(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  enum { A, B, C, D };
  if (leaf == 7 && sub == 0) {
    // EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31
    r[B] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
    // ECX: VBMI 1, VBMI2 6, GFNI 8, VNNI 11, BITALG 12, VPOPCNTDQ 14
    r[C] &= ~((1u << 1) | (1u << 6) | (1u << 8) | (1u << 11) | (1u << 12) | (1u << 14));
    // EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, AMX-BF16 22, FP16 23, AMX-TILE 24, AMX-INT8 25
    r[D] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
  } else if (leaf == 7 && sub == 1) {
    r[A] &= ~((1u << 4) | (1u << 5) | (1u << 23));  // AVX-VNNI, AVX512_BF16, AVX-IFMA
    r[D] &= ~((1u << 4) | (1u << 5) | (1u << 10) | (1u << 19));  // AVX-VNNI-INT8, AVX-NE-CONVERT, AVX-VNNI-INT16, AVX10
  } else if (leaf == 0xd && sub == 0) {
    r[A] &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18));  // opmask, ZMM state; AMX tiles
  }
}

static void on_segv(int sig, siginfo_t* info, void* context) {
  ucontext_t* uc = (ucontext_t*)context;
  const unsigned char* ip = (const unsigned char*)uc->uc_mcontext.gregs[REG_RIP];
  // a faulting CPUID is a general-protection fault (SI_KERNEL), at an instruction that can be
  // read; a page fault (SEGV_MAPERR, SEGV_ACCERR) may be at an unreadable one
  if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {  // CPUID
    const uint32_t leaf = (uint32_t)uc->uc_mcontext.gregs[REG_RAX], sub = (uint32_t)uc->uc_mcontext.gregs[REG_RCX];
    uint32_t r[4];
    set_cpuid(1);
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
    set_cpuid(0);
    mask(leaf, sub, r);
    uc->uc_mcontext.gregs[REG_RAX] = r[0];
    uc->uc_mcontext.gregs[REG_RBX] = r[1];
    uc->uc_mcontext.gregs[REG_RCX] = r[2];
    uc->uc_mcontext.gregs[REG_RDX] = r[3];
    uc->uc_mcontext.gregs[REG_RIP] += 2;
    ++trapped;
    return;
  }
  // any other fault is not ours: the handler before ours (or the default, which stops the process)
  // takes it when the instruction runs again; CPUID is no longer answered after that
  sigaction(SIGSEGV, &previous, NULL);
  (void)sig;
}

// 0 on success; -1 where the kernel or CPU cannot fault on CPUID.
int bitmaps_mask_cpuid(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_segv;
  action.sa_flags = SA_SIGINFO;  // a fault inside the handler stops the process, not a loop
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGSEGV, &action, &previous) != 0) return -1;
  if (set_cpuid(0) != 0) {
    sigaction(SIGSEGV, &previous, NULL);
    return -1;
  }
  return 0;
}

// What CPUID leaf 7 reports now (through the handler once masked): EBX, ECX, EDX into out.
void bitmaps_cpuid_leaf7(uint32_t out[3]) {
  uint32_t a, b, c, d;
  __cpuid_count(7, 0, a, b, c, d);
  out[0] = b, out[1] = c, out[2] = d;
  (void)a;
}

// How many CPUID instructions the handler has answered.
long bitmaps_cpuid_trapped(void) { return trapped; }

// BITMAPS_CPUID_MASK=avx2 in the environment: mask now, before the program's libraries load; a
// process that asked for the mask and cannot have it stops rather than time the wrong kernels
// under the masked label.
__attribute__((constructor)) static void mask_from_environment(void) {
  const char* isa = getenv("BITMAPS_CPUID_MASK");
  if (isa == NULL || *isa == '\0') return;
  if (strcmp(isa, "avx2") != 0) {
    fprintf(stderr, "cpuid_mask: BITMAPS_CPUID_MASK=%s: only avx2 is known\n", isa);
    _exit(2);
  }
  if (bitmaps_mask_cpuid() != 0) {
    fprintf(stderr, "cpuid_mask: this kernel or CPU cannot fault on CPUID (no cpuid_fault): not masked\n");
    _exit(2);
  }
  uint32_t check[3];
  bitmaps_cpuid_leaf7(check);  // answered by the handler: the mask is live
}
