// Throws std::runtime_error with file:line and NCCL's error string when an NCCL call fails.
#pragma once

#include <nccl.h>

#include <stdexcept>
#include <string>

#define MOESIM_NCCL_CHECK(expr)                                                             \
  do {                                                                                      \
    ncclResult_t r_ = (expr);                                                               \
    if (r_ != ncclSuccess)                                                                  \
      throw std::runtime_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) +     \
                               ": " #expr ": " + ncclGetErrorString(r_));                   \
  } while (0)
