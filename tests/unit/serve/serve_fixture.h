// Scenario files for the serving tests, written to a temporary folder.
#pragma once

#include <fstream>
#include <string>

#include "sim/config/scenario.h"
#include "tests/unit/test_util.h"

namespace moesim::test {

struct ScenarioText {
  std::string system = "hgx-h200";
  int domains = 1;
  std::string pools = R"([{"name": "main", "role": "aggregated", "instances": 1, "plan": "tp=8",
                            "scheduler": {"max_batch_size": 256, "max_tokens_per_step": 1000, "chunk_size": 1000}}])";
  std::string kv = R"({"dtype": "bf16", "memory_fraction": 0.9})";
  std::string workload;  // the whole "workload" object
  std::string extra;     // more top-level members, each followed by a comma
  std::string mtp;       // the "mtp" object or empty
  std::string deployment_extra;  // more members of "deployment", each preceded by a comma

  std::string json() const {
    return std::string("{\"kind\": \"scenario\", \"id\": \"t\", \"name\": \"test\", \"sources\": {},\n") +
           "\"model\": {\"file\": \"" + source_path("models/deepseek-r1.json") + "\", \"precision\": \"fp8\"},\n" +
           "\"system\": {\"file\": \"" + source_path("hardware/systems/" + system + ".json") +
           "\", \"domains\": " + std::to_string(domains) + "},\n" + extra + "\"deployment\": {\"pools\": " + pools +
           ", \"kv_cache\": " + kv + (mtp.empty() ? "" : ", \"mtp\": " + mtp) + deployment_extra + "},\n\"workload\": " + workload +
           "}\n";
  }
};

// Writes the scenario (and an optional trace next to it) and loads it.
class ScenarioFile {
 public:
  ScenarioFile(const ScenarioText& t, const std::string& trace = "") : file_("scenario.json", t.json()) {
    if (!trace.empty()) std::ofstream((file_.dir() / "trace.csv").string()) << trace;
  }
  ScenarioSpec load() const { return load_scenario(file_.path()); }
  const std::string& path() const { return file_.path(); }

 private:
  TempFile file_;
};

}  // namespace moesim::test
