#include "sim/calib/prepare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "sim/calib/op_from_record.h"
#include "sim/calib/query.h"

namespace moesim::calib {

std::optional<CurveId> curve_id(const Record& r) {
  if (r.kernel == "nccl_alltoall")
    return CurveId{r.kernel, r.dtype, r.shape.pattern, {static_cast<double>(r.shape.gpus)}};
  auto op = op_from_record(r);
  if (!op) return std::nullopt;
  auto q = query_for(*op);
  if (!q) return std::nullopt;
  return CurveId{q->kernel, q->dtype, r.kernel == "grouped_gemm" ? r.shape.routing : "", q->key};
}

double curve_x(const Record& r) {
  if (r.kernel == "nccl_alltoall") return static_cast<double>(r.shape.bytes_per_peer);
  auto op = op_from_record(r);
  if (!op) return 0;
  auto q = query_for(*op);
  return q ? q->x : 0;
}

Prepared prepare_records(std::vector<Record> records) {
  Prepared out;
  std::vector<Record> ok;
  for (auto& r : records) {
    if (r.check_failed) {
      out.excluded.push_back({r.where(), r.kernel, "check failed (status \"check_failed\")"});
      continue;
    }
    if (!is_known_kernel(r.kernel)) {
      out.excluded.push_back({r.where(), r.kernel, "kernel not modelled"});
      continue;
    }
    if (!(r.check_rel_err <= check_tolerance(r.kernel))) {
      out.excluded.push_back({r.where(), r.kernel,
                              fmt::format("check_rel_err {} above the tolerance {}",
                                          std::isfinite(r.check_rel_err) ? fmt::format("{:g}", r.check_rel_err) : "null",
                                          check_tolerance(r.kernel))});
      continue;
    }
    const bool compute = r.kernel != "copy" && r.kernel != "launch" && r.kernel != "p2p" && r.kernel != "nccl_alltoall";
    if (compute && !curve_id(r)) {
      out.excluded.push_back({r.where(), r.kernel, "dtype \"" + r.dtype + "\" not modelled"});
      continue;
    }
    ok.push_back(std::move(r));
  }
  // Duplicates: keep the fastest of each (kernel, dtype, shape); ties keep the first in file order.
  std::map<std::string, std::size_t> best;
  for (std::size_t i = 0; i < ok.size(); ++i) {
    const std::string id = ok[i].kernel + "|" + ok[i].dtype + "|" + ok[i].shape_text;
    auto [it, fresh] = best.emplace(id, i);
    if (!fresh && ok[i].median_us < ok[it->second].median_us) it->second = i;
  }
  std::vector<bool> keep(ok.size(), false);
  for (const auto& [id, i] : best) keep[i] = true;
  for (std::size_t i = 0; i < ok.size(); ++i) {
    if (keep[i]) continue;
    const Record& kept = ok[best.at(ok[i].kernel + "|" + ok[i].dtype + "|" + ok[i].shape_text)];
    out.excluded.push_back({ok[i].where(), ok[i].kernel,
                            fmt::format("same shape as {} which is faster ({} {:.4g} us vs {} {:.4g} us)", kept.where(),
                                        kept.impl.empty() ? "-" : kept.impl, kept.median_us,
                                        ok[i].impl.empty() ? "-" : ok[i].impl, ok[i].median_us)});
  }
  for (std::size_t i = 0; i < ok.size(); ++i)
    if (keep[i]) out.usable.push_back(std::move(ok[i]));
  // Stable order: curves first (by id and x), then the scalar kernels.
  std::vector<std::tuple<int, CurveId, double, std::string, std::string, std::size_t>> order;
  for (std::size_t i = 0; i < out.usable.size(); ++i) {
    const Record& r = out.usable[i];
    auto id = curve_id(r);
    order.emplace_back(id ? 0 : 1, id ? *id : CurveId{r.kernel, r.dtype, "", {}}, id ? curve_x(r) : 0.0, r.shape_text,
                       r.where(), i);
  }
  std::sort(order.begin(), order.end());
  std::vector<Record> sorted;
  for (const auto& o : order) sorted.push_back(std::move(out.usable[std::get<5>(o)]));
  out.usable = std::move(sorted);
  return out;
}

}  // namespace moesim::calib
