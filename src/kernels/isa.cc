// ISA detection (CPUID via __builtin_cpu_supports) and the process-wide active ISA.
#include "qforge/kernels/isa.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

std::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

Isa ParseIsa(std::string_view name) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (name == IsaName(isa)) return isa;
  throw Error("unknown ISA '" + std::string(name) + "' (expected scalar, avx2 or avx512)");
}

bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kAvx512:
      return IsaSupported(Isa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
  }
  return false;
}

Isa DetectIsa() {
  if (IsaSupported(Isa::kAvx512)) return Isa::kAvx512;
  if (IsaSupported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

namespace {

void CheckSupported(Isa isa, const char* origin) {
  if (!IsaSupported(isa))
    throw Error(std::string(origin) + ": ISA '" + std::string(IsaName(isa)) +
                "' is not supported by this CPU (best available: " +
                std::string(IsaName(DetectIsa())) + ")");
}

Isa InitialIsa() {
  const char* env = std::getenv("QF_ISA");
  if (env == nullptr || *env == '\0') return DetectIsa();
  Isa isa = ParseIsa(env);
  CheckSupported(isa, "QF_ISA");
  return isa;
}

std::atomic<int>& ActiveSlot() {
  // Initialized on first use (thread-safe static), so a bad QF_ISA throws from a kernel call
  // with a clear message instead of aborting during static initialization.
  static std::atomic<int> slot{static_cast<int>(InitialIsa())};
  return slot;
}

}  // namespace

Isa ActiveIsa() { return static_cast<Isa>(ActiveSlot().load(std::memory_order_relaxed)); }

void SetIsa(Isa isa) {
  CheckSupported(isa, "SetIsa");
  ActiveSlot().store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace qforge::kernels
