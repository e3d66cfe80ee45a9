// This machine's int8 multiply-accumulate peak per core, measured with independent accumulator
// chains of the three int8 idioms (inline assembly, so the compiler cannot fold or reorder):
//   AVX2 vpmaddubsw + vpmaddwd(ones) + vpaddd  (32 u8 x s8 MACs per ymm; the usual AVX2 idiom,
//                                                saturating in int16, used only to measure)
//   AVX2 vpmaddwd + vpaddd on int16            (16 MACs per ymm; exact, qforge's AVX2 kernel)
//   AVX-512 VNNI vpdpbusd zmm                  (64 MACs per instruction; qforge's VNNI kernel)
//   AVX-VNNI {vex} vpdpbusd ymm                (32 MACs per instruction)
// Shared by int8_peak_bench.cc and qgemm_bench.cc (which quotes GEMM speed as % of peak).
#pragma once

#include <immintrin.h>
#include <time.h>

#include <cstdint>

namespace qforge::bench {

enum class Int8Idiom { kAvx2Maddubs, kAvx2Madd16, kVnniZmm, kVnniYmm };

inline const char* Int8IdiomName(Int8Idiom i) {
  switch (i) {
    case Int8Idiom::kAvx2Maddubs:
      return "avx2_vpmaddubsw_vpmaddwd";
    case Int8Idiom::kAvx2Madd16:
      return "avx2_vpmaddwd_int16";
    case Int8Idiom::kVnniZmm:
      return "avx512vnni_vpdpbusd_zmm";
    case Int8Idiom::kVnniYmm:
      return "avxvnni_vpdpbusd_ymm";
  }
  return "?";
}

inline bool Int8IdiomSupported(Int8Idiom i) {
  switch (i) {
    case Int8Idiom::kAvx2Maddubs:
    case Int8Idiom::kAvx2Madd16:
      return __builtin_cpu_supports("avx2");
    case Int8Idiom::kVnniZmm:
      return __builtin_cpu_supports("avx512vnni");
    case Int8Idiom::kVnniYmm:
      return __builtin_cpu_supports("avxvnni");
  }
  return false;
}

// MACs done by one call of the loops below per step.
inline int64_t Int8IdiomMacsPerStep(Int8Idiom i) {
  switch (i) {
    case Int8Idiom::kAvx2Maddubs:
      return 8 * 32;  // 8 chains x 32 products
    case Int8Idiom::kAvx2Madd16:
      return 8 * 16;
    case Int8Idiom::kVnniZmm:
      return 16 * 64;
    case Int8Idiom::kVnniYmm:
      return 12 * 32;
  }
  return 0;
}

#define QF_MADDUBS(acc)                                                                          \
  "vpmaddubsw %[b], %[a], %[t]\n\tvpmaddwd %[one], %[t], %[t]\n\tvpaddd %[t], %" #acc ", %" #acc \
  "\n\t"

__attribute__((target("avx2"), noinline)) inline int32_t PeakAvx2Maddubs(int64_t steps) {
  __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(5), one = _mm256_set1_epi16(1), t;
  __m256i c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a;
  for (int64_t s = 0; s < steps; ++s) {
    asm volatile(QF_MADDUBS([c0]) QF_MADDUBS([c1]) QF_MADDUBS([c2]) QF_MADDUBS([c3])
                     QF_MADDUBS([c4]) QF_MADDUBS([c5]) QF_MADDUBS([c6]) QF_MADDUBS([c7])
                 : [c0] "+x"(c0), [c1] "+x"(c1), [c2] "+x"(c2), [c3] "+x"(c3), [c4] "+x"(c4),
                   [c5] "+x"(c5), [c6] "+x"(c6), [c7] "+x"(c7), [t] "=&x"(t)
                 : [a] "x"(a), [b] "x"(b), [one] "x"(one));
  }
  __m256i s =
      _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)),
                       _mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7)));
  return _mm256_extract_epi32(s, 0);
}
#undef QF_MADDUBS

#define QF_MADD16(acc) "vpmaddwd %[b], %[a], %[t]\n\tvpaddd %[t], %" #acc ", %" #acc "\n\t"

__attribute__((target("avx2"), noinline)) inline int32_t PeakAvx2Madd16(int64_t steps) {
  __m256i a = _mm256_set1_epi16(3), b = _mm256_set1_epi16(5), t;
  __m256i c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a;
  for (int64_t s = 0; s < steps; ++s) {
    asm volatile(QF_MADD16([c0]) QF_MADD16([c1]) QF_MADD16([c2]) QF_MADD16([c3]) QF_MADD16([c4])
                     QF_MADD16([c5]) QF_MADD16([c6]) QF_MADD16([c7])
                 : [c0] "+x"(c0), [c1] "+x"(c1), [c2] "+x"(c2), [c3] "+x"(c3), [c4] "+x"(c4),
                   [c5] "+x"(c5), [c6] "+x"(c6), [c7] "+x"(c7), [t] "=&x"(t)
                 : [a] "x"(a), [b] "x"(b));
  }
  __m256i s =
      _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)),
                       _mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7)));
  return _mm256_extract_epi32(s, 0);
}
#undef QF_MADD16

#define QF_DP(acc) "vpdpbusd %[b], %[a], %" #acc "\n\t"

__attribute__((target("avx512f,avx512vnni"), noinline)) inline int32_t PeakVnniZmm(int64_t steps) {
  __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(5);
  __m512i c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a;
  __m512i c8 = a, c9 = a, c10 = a, c11 = a, c12 = a, c13 = a, c14 = a, c15 = a;
  for (int64_t s = 0; s < steps; ++s) {
    // Two statements: an asm has at most 30 operands (an in-out operand counts twice).
    asm volatile(QF_DP([c0]) QF_DP([c1]) QF_DP([c2]) QF_DP([c3]) QF_DP([c4]) QF_DP([c5]) QF_DP([c6])
                     QF_DP([c7])
                 : [c0] "+v"(c0), [c1] "+v"(c1), [c2] "+v"(c2), [c3] "+v"(c3), [c4] "+v"(c4),
                   [c5] "+v"(c5), [c6] "+v"(c6), [c7] "+v"(c7)
                 : [a] "v"(a), [b] "v"(b));
    asm volatile(QF_DP([c8]) QF_DP([c9]) QF_DP([c10]) QF_DP([c11]) QF_DP([c12]) QF_DP([c13])
                     QF_DP([c14]) QF_DP([c15])
                 : [c8] "+v"(c8), [c9] "+v"(c9), [c10] "+v"(c10), [c11] "+v"(c11), [c12] "+v"(c12),
                   [c13] "+v"(c13), [c14] "+v"(c14), [c15] "+v"(c15)
                 : [a] "v"(a), [b] "v"(b));
  }
  __m512i sum = _mm512_add_epi32(c0, c1);
  for (__m512i c : {c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15})
    sum = _mm512_add_epi32(sum, c);
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, sum);
  return lanes[0];
}
#undef QF_DP

#define QF_DPV(acc) "%{vex%} vpdpbusd %[b], %[a], %" #acc "\n\t"

__attribute__((target("avx2,avxvnni"), noinline)) inline int32_t PeakVnniYmm(int64_t steps) {
  __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(5);
  __m256i c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a,
          c11 = a;
  for (int64_t s = 0; s < steps; ++s) {
    asm volatile(QF_DPV([c0]) QF_DPV([c1]) QF_DPV([c2]) QF_DPV([c3]) QF_DPV([c4]) QF_DPV([c5])
                     QF_DPV([c6]) QF_DPV([c7]) QF_DPV([c8]) QF_DPV([c9]) QF_DPV([c10]) QF_DPV([c11])
                 : [c0] "+x"(c0), [c1] "+x"(c1), [c2] "+x"(c2), [c3] "+x"(c3), [c4] "+x"(c4),
                   [c5] "+x"(c5), [c6] "+x"(c6), [c7] "+x"(c7), [c8] "+x"(c8), [c9] "+x"(c9),
                   [c10] "+x"(c10), [c11] "+x"(c11)
                 : [a] "x"(a), [b] "x"(b));
  }
  __m256i s = c0;
  for (__m256i c : {c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11}) s = _mm256_add_epi32(s, c);
  return _mm256_extract_epi32(s, 0);
}
#undef QF_DPV

// Runs `steps` steps of idiom i; returns a value depending on the work (keep it alive).
inline int32_t RunInt8Idiom(Int8Idiom i, int64_t steps) {
  switch (i) {
    case Int8Idiom::kAvx2Maddubs:
      return PeakAvx2Maddubs(steps);
    case Int8Idiom::kAvx2Madd16:
      return PeakAvx2Madd16(steps);
    case Int8Idiom::kVnniZmm:
      return PeakVnniZmm(steps);
    case Int8Idiom::kVnniYmm:
      return PeakVnniYmm(steps);
  }
  return 0;
}

// CPU time of the calling thread in seconds (the clock Google Benchmark's CPU time uses for a
// single-threaded benchmark, so GEMM rates and this peak compare like for like on a loaded
// machine).
inline double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Int8 peak of idiom i on the calling thread in GOPS (2 ops per multiply-accumulate), thread CPU
// time: best of a few ~20 ms runs. 0 if the CPU lacks the idiom.
inline double MeasureInt8PeakGops(Int8Idiom i) {
  if (!Int8IdiomSupported(i)) return 0.0;
  constexpr int64_t kSteps = 1 << 17;
  double best = 0.0;
  volatile int32_t sink = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = ThreadCpuSeconds();
    sink = sink + RunInt8Idiom(i, kSteps);
    const double sec = ThreadCpuSeconds() - t0;
    if (sec <= 0.0) continue;
    const double gops = 2.0 * kSteps * Int8IdiomMacsPerStep(i) / sec / 1e9;
    if (gops > best) best = gops;
  }
  return best;
}

}  // namespace qforge::bench
