// Element-wise loops are compiled twice, for AVX2 and for the x86-64 baseline, and the loader picks the AVX2 clone
// when the CPU has it (GCC function multiversioning, dispatching on the CPU's features): portable binaries that still
// use the wide units where they exist. ("arch=haswell" would dispatch on the CPU model and skip AMD's AVX2 CPUs.)
#pragma once
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FLIP_VECTORIZE __attribute__((target_clones("avx2", "default")))
#else
#define FLIP_VECTORIZE
#endif
