// Instruction-set selection for the optimized kernels: detected once, overridable.
//
// The active ISA is chosen at start-up as the best one the CPU supports, unless the environment
// variable QF_ISA (scalar|avx2|avx512) forces one. SetIsa() changes it later (the CLI's --isa).
// Requesting an ISA the CPU (or this build) lacks throws qforge::Error.
#pragma once

#include <string_view>

namespace qforge::kernels {

enum class Isa { kScalar, kAvx2, kAvx512 };

// "scalar", "avx2", "avx512".
std::string_view IsaName(Isa isa);
// Inverse of IsaName; throws Error naming the bad value and the valid ones.
Isa ParseIsa(std::string_view name);
// True when this CPU can run kernels of `isa` (kAvx2 needs AVX2+FMA; kAvx512 needs F/BW/DQ/VL).
bool IsaSupported(Isa isa);
// The best ISA this CPU supports (independent of QF_ISA / SetIsa).
Isa DetectIsa();
// The ISA kernels use now: QF_ISA if set at first use, else DetectIsa(), or the last SetIsa().
Isa ActiveIsa();
// Forces the ISA for all kernels created or run afterwards. Throws Error if unsupported.
void SetIsa(Isa isa);

}  // namespace qforge::kernels
