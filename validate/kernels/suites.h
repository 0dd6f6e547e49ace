// Every measurement suite of the harness. Each suite checks its kernel on fresh
// random inputs before timing it and writes JSON lines through the Harness.
// The record schema (kernel names, dtype names, shape keys) is documented in
// validate/README.md; moesim's calibration reads exactly those keys.
#pragma once

#include <cstdio>

#include "harness.h"

namespace moesim::validate {

// Library and micro-benchmark suites (validate/kernels/*.cu).
void run_copy_suite(Harness& h);          // kernel "copy"
void run_launch_suite(Harness& h);        // kernel "launch"
void run_gemm_suite(Harness& h);          // kernel "gemm"
void run_grouped_gemm_suite(Harness& h);  // kernel "grouped_gemm"

// Our own kernels (validate/kernels/custom/*.cu).
void run_router_suite(Harness& h);      // kernel "router"
void run_permute_suite(Harness& h);     // kernels "permute" and "unpermute"
void run_mla_decode_suite(Harness& h);  // kernel "mla_decode"

// Several GPUs of one node: NCCL all-to-all(v) and point-to-point.
// Kernels "nccl_alltoall" and "p2p".
void run_nccl_suite(std::FILE* out, int n_gpus, bool quick);

}  // namespace moesim::validate
