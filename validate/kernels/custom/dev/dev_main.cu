// DEV ONLY driver: dev_custom [--quick] [router] [permute] [mla]  > out.jsonl
#include <cstring>
#include <string>

#include "../../suites.h"

using namespace moesim::validate;

int main(int argc, char** argv) {
  bool quick = false, r = false, p = false, m = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "router") r = true;
    else if (a == "permute") p = true;
    else if (a == "mla") m = true;
  }
  if (!r && !p && !m) r = p = m = true;
  try {
    Harness h(stdout, 0);
    h.quick = quick;
    if (r) run_router_suite(h);
    if (p) run_permute_suite(h);
    if (m) run_mla_decode_suite(h);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FATAL: %s\n", e.what());
    return 1;
  }
  return 0;
}
