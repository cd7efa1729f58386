/* LD_PRELOAD helper of tools/emulated-avx2 --native: the process's CPUID instructions fault (Linux's
   ARCH_SET_CPUID, on CPUs with CPUID faulting: the `cpuid_fault` flag) and are answered here with the
   host's values less AVX-512, AVX-VNNI, AVX10 and AMX, so every library that asks the CPU itself
   (ONNX Runtime's MLAS, numpy, OpenBLAS, MKL, oneDNN, OpenVINO, torch) picks its AVX2 code. The
   setting is kept by threads and forks and reset by execve, where LD_PRELOAD sets it again.
   A development tool, compiled by the script; nothing in rerankit uses it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <asm/prctl.h>

static struct sigaction program_action;  /* the SIGSEGV action the program set: called for other faults */
static int (*libc_sigaction)(int, const struct sigaction *, struct sigaction *);

static void cpuid_faults(int on) { syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

static void hide_features(uint32_t leaf, uint32_t subleaf, uint32_t r[4]) {
  if (leaf == 7 && subleaf == 0) {
    /* EBX: AVX512 F, DQ, IFMA, PF, ER, CD, BW, VL */
    r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
    /* ECX: AVX512 VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ */
    r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
    /* EDX: AVX512 4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512-FP16, AMX-TILE, AMX-INT8 */
    r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
  } else if (leaf == 7 && subleaf == 1) {
    r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));  /* EAX: AVX-VNNI, AVX512-BF16, AMX-FP16, AVX-IFMA */
    r[3] &= ~((1u << 4) | (1u << 5) | (1u << 10) | (1u << 19));  /* EDX: AVX-VNNI-INT8, AVX-NE-CONVERT, -INT16, AVX10 */
  } else if (leaf == 0xd && subleaf == 0) {
    r[0] &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18));  /* state: opmask, ZMM, AMX tiles */
  } else if (leaf == 0x1d || leaf == 0x1e || leaf == 0x24) {
    r[0] = r[1] = r[2] = r[3] = 0;  /* AMX tile and AVX10 leaves */
  }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
  greg_t *regs = ((ucontext_t *)context)->uc_mcontext.gregs;
  const unsigned char *ip = (const unsigned char *)regs[REG_RIP];
  if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {  /* a faulting CPUID */
    uint32_t r[4], leaf = (uint32_t)regs[REG_RAX], subleaf = (uint32_t)regs[REG_RCX];
    cpuid_faults(0);
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(subleaf));
    cpuid_faults(1);
    hide_features(leaf, subleaf, r);
    regs[REG_RAX] = r[0], regs[REG_RBX] = r[1], regs[REG_RCX] = r[2], regs[REG_RDX] = r[3];
    regs[REG_RIP] += 2;
    return;
  }
  if (program_action.sa_flags & SA_SIGINFO) {
    if (program_action.sa_sigaction) return program_action.sa_sigaction(sig, info, context);
  } else if (program_action.sa_handler != SIG_DFL && program_action.sa_handler != SIG_IGN) {
    return program_action.sa_handler(sig);
  }
  struct sigaction fallback;  /* no handler of the program's: the fault repeats and ends the process */
  memset(&fallback, 0, sizeof fallback);
  fallback.sa_handler = SIG_DFL;
  libc_sigaction(SIGSEGV, &fallback, NULL);
}

/* A program's own SIGSEGV handler (Python's faulthandler) goes behind this one instead of replacing it. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (!libc_sigaction) libc_sigaction = dlsym(RTLD_NEXT, "sigaction");
  if (sig != SIGSEGV) return libc_sigaction(sig, act, old);
  if (old) *old = program_action;
  if (act) program_action = *act;
  return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
  struct sigaction act, old;
  memset(&act, 0, sizeof act);
  act.sa_handler = handler;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  return sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

__attribute__((constructor)) static void start(void) {
  libc_sigaction = dlsym(RTLD_NEXT, "sigaction");
  struct sigaction ours;
  memset(&ours, 0, sizeof ours);
  ours.sa_sigaction = on_segv;
  ours.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&ours.sa_mask);
  program_action.sa_handler = SIG_DFL;
  libc_sigaction(SIGSEGV, &ours, NULL);
  cpuid_faults(1);
}
