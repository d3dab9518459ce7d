#include "dispatch.h"

#include <atomic>
#include <string>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#include <sys/types.h>
#endif

namespace bitmaps {
namespace {

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("popcnt");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("fma") && __builtin_cpu_supports("popcnt");
#else
  return false;
#endif
}

bool cpu_has_avx512_vnni() {
#if defined(__x86_64__) || defined(__i386__)
  return cpu_has_avx512() && cpu_has_avx2() && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512vnni") &&
         __builtin_cpu_supports("avx512bitalg");
#else
  return false;
#endif
}

bool cpu_has_avx512_vbmi() {
#if defined(__x86_64__) || defined(__i386__)
  return cpu_has_avx512_vnni() && __builtin_cpu_supports("avx512vbmi");
#else
  return false;
#endif
}

// AMD issues vpdpbusd on one port (Zen 4: 234 G int8 multiply-adds a second; W1A8 layers by
// kernels_avx512_vbmi.cpp's lookups 243-326); Intel's AVX-512 cores issue it on two and vpermb on
// one, where the lookups are not expected to gain (not measured), so there avx512_vnni stays the
// default.
bool cpu_is_amd() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_is("amd");
#else
  return false;
#endif
}

// ARMv8.2 dot product (sdot/udot): the kernel's HWCAP bit on Linux (Android included); on macOS
// the sysctl Apple documents for it (every Apple M-series core has it; a system before macOS 12
// lacks the name and gets the plain NEON table). Elsewhere (other kernels) the plain NEON table is
// used; BITMAPS_KERNELS cannot force an ISA the CPU lacks.
[[maybe_unused]] bool cpu_has_dotprod() {  // only called in aarch64 builds
#if defined(__aarch64__) && defined(__linux__)
  constexpr unsigned long kHwcapAsimdDp = 1ul << 20;  // HWCAP_ASIMDDP in <asm/hwcap.h>
  return (getauxval(AT_HWCAP) & kHwcapAsimdDp) != 0;
#elif defined(__aarch64__) && defined(__APPLE__)
  int value = 0;
  size_t size = sizeof(value);
  return sysctlbyname("hw.optional.arm.FEAT_DotProd", &value, &size, nullptr, 0) == 0 && value != 0;
#else
  return false;
#endif
}

// The first of these the CPU has. Plain AVX-512 (F/BW, nibble-table popcount) comes after AVX2:
// on AMD Zen 4, whose 512-bit units are double-pumped, it ran 10-15% slower than AVX2; it stays
// one set_active_kernels("avx512") (BITMAPS_KERNELS=avx512) away.
}  // namespace

const KernelTable* default_kernels() {
  const auto tables = available_kernels();
  const char* first = cpu_is_amd() ? "avx512_vbmi" : "avx512_vnni";
  for (const char* preferred : {first, "avx512_vnni", "avx2", "neon_dotprod", "neon"})
    for (const KernelTable* table : tables)
      if (std::string(table->isa) == preferred) return table;
  return tables.back();
}

namespace {

std::atomic<const KernelTable*>& active() {
  static std::atomic<const KernelTable*> table{default_kernels()};
  return table;
}

}  // namespace

std::vector<const KernelTable*> available_kernels() {
  std::vector<const KernelTable*> tables{&kScalarKernels};
#if defined(BITMAPS_HAVE_AVX2)
  if (cpu_has_avx2()) tables.push_back(&kAvx2Kernels);
#endif
#if defined(BITMAPS_HAVE_AVX512)
  if (cpu_has_avx512()) tables.push_back(&kAvx512Kernels);
#endif
#if defined(BITMAPS_HAVE_AVX512_VNNI) && defined(BITMAPS_HAVE_AVX2)
  if (cpu_has_avx512_vnni()) tables.push_back(&avx512_vnni_kernels(kAvx2Kernels));
#endif
#if defined(BITMAPS_HAVE_AVX512_VBMI) && defined(BITMAPS_HAVE_AVX512_VNNI) && defined(BITMAPS_HAVE_AVX2)
  if (cpu_has_avx512_vbmi()) tables.push_back(&avx512_vbmi_kernels(avx512_vnni_kernels(kAvx2Kernels)));
#endif
#if defined(BITMAPS_HAVE_NEON) && defined(__aarch64__)
  tables.push_back(&neon_kernels());  // Advanced SIMD: every ARMv8-A core has it
#if defined(BITMAPS_HAVE_NEON_DOTPROD)
  if (cpu_has_dotprod()) tables.push_back(&neon_dotprod_kernels(neon_kernels()));
#endif
#endif
  return tables;
}

const KernelTable& active_kernels() { return *active().load(); }

bool set_active_kernels(const std::string& isa) {
  for (const KernelTable* table : available_kernels()) {
    if (isa == table->isa) {
      active().store(table);
      return true;
    }
  }
  return false;
}

}  // namespace bitmaps
