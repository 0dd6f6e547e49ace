// Chrome trace-event JSON (opens in Perfetto / chrome://tracing): processes
// and threads named by metadata events, complete ("X") slices with a
// category and optional arguments. Slices are written sorted by (start,
// insertion order), so the same input gives the same file. Times in the file
// are microseconds (the format's unit), printed with picosecond precision.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/core/time.h"

namespace moesim {

class TraceWriter {
 public:
  void name_process(int pid, std::string name);
  void name_thread(int pid, int tid, std::string name);
  // A slice [start, start + dur) on (pid, tid). args: (key, value) pairs; values that
  // parse as numbers are written as numbers, others as strings.
  void slice(int pid, int tid, std::string name, std::string_view category, Time start, Duration dur,
             std::vector<std::pair<std::string, std::string>> args = {});
  [[nodiscard]] std::size_t slices() const { return slices_.size(); }
  [[nodiscard]] std::string json() const;

 private:
  struct Slice {
    int pid, tid;
    std::string name;
    std::string category;
    std::int64_t start, dur;
    std::vector<std::pair<std::string, std::string>> args;
  };
  std::vector<std::pair<int, std::string>> processes_;
  std::vector<std::pair<std::pair<int, int>, std::string>> threads_;
  std::vector<Slice> slices_;
};

// JSON string escaping (quotes, backslashes, control characters).
std::string json_escape(std::string_view s);

}  // namespace moesim
