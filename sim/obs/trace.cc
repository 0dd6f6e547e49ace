#include "sim/obs/trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

namespace moesim {

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(ch)));
        } else {
          out += ch;
        }
    }
  }
  return out;
}

void TraceWriter::name_process(int pid, std::string name) { processes_.emplace_back(pid, std::move(name)); }
void TraceWriter::name_thread(int pid, int tid, std::string name) {
  threads_.push_back({{pid, tid}, std::move(name)});
}

void TraceWriter::slice(int pid, int tid, std::string name, std::string_view category, Time start, Duration dur,
                        std::vector<std::pair<std::string, std::string>> args) {
  slices_.push_back({pid, tid, std::move(name), std::string(category), start.time_since_epoch().count(), dur.count(),
                     std::move(args)});
}

namespace {

// Picoseconds as microseconds with all six decimals (exact).
std::string us(std::int64_t ps) {
  const char* sign = ps < 0 ? "-" : "";
  const std::int64_t a = ps < 0 ? -ps : ps;
  return fmt::format("{}{}.{:06}", sign, a / 1000000, a % 1000000);
}

bool is_number(const std::string& v) {
  double x = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  return !v.empty() && ec == std::errc() && p == v.data() + v.size() && std::isfinite(x) &&
         v.find_first_of("iInN") == std::string::npos;
}

}  // namespace

std::string TraceWriter::json() const {
  std::string out = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
  bool first = true;
  auto sep = [&] {
    if (!first) out += ",\n";
    first = false;
  };
  for (const auto& [pid, name] : processes_) {
    sep();
    out += fmt::format(R"({{"ph":"M","name":"process_name","pid":{},"tid":0,"args":{{"name":"{}"}}}})", pid,
                       json_escape(name));
    sep();
    out += fmt::format(R"({{"ph":"M","name":"process_sort_index","pid":{},"tid":0,"args":{{"sort_index":{}}}}})", pid, pid);
  }
  for (const auto& [key, name] : threads_) {
    sep();
    out += fmt::format(R"({{"ph":"M","name":"thread_name","pid":{},"tid":{},"args":{{"name":"{}"}}}})", key.first,
                       key.second, json_escape(name));
    sep();
    out += fmt::format(R"({{"ph":"M","name":"thread_sort_index","pid":{},"tid":{},"args":{{"sort_index":{}}}}})",
                       key.first, key.second, key.second);
  }
  std::vector<std::size_t> order(slices_.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return slices_[a].start < slices_[b].start; });
  for (const std::size_t i : order) {
    const Slice& s = slices_[i];
    sep();
    out += fmt::format(R"({{"ph":"X","name":"{}","cat":"{}","pid":{},"tid":{},"ts":{},"dur":{})", json_escape(s.name),
                       json_escape(s.category), s.pid, s.tid, us(s.start), us(s.dur));
    if (!s.args.empty()) {
      out += ",\"args\":{";
      for (std::size_t k = 0; k < s.args.size(); ++k) {
        const auto& [key, val] = s.args[k];
        out += fmt::format("{}\"{}\":", k ? "," : "", json_escape(key));
        out += is_number(val) ? val : "\"" + json_escape(val) + "\"";
      }
      out += "}";
    }
    out += "}";
  }
  out += "\n]}\n";
  return out;
}

}  // namespace moesim
