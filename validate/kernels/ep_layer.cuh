// Kernel "ep_layer": one DeepSeek-R1 MoE layer with expert parallelism over N GPUs
// of one host (router, dispatch all-to-all, grouped expert GEMMs, combine
// all-to-all), timed end to end. See ep_layer.cu and validate/README.md.
#pragma once

#include <cstdio>

namespace moesim::validate {

// Runs the check (N-GPU output of GPU 0's tokens vs a 1-GPU run of the same
// kernels holding all 256 experts) and then times every point over GPUs 0..n-1.
// Writes JSON lines to `out`; check failures are counted (check_failures()).
void run_ep_layer_suite(std::FILE* out, int n_gpus, bool quick);

}  // namespace moesim::validate
