// `moesim comm`: placeholder registration until the network model lands (same issue, later commit).
#include "sim/cli/command.h"
#include "sim/config/error.h"

namespace moesim::cli {

void add_comm_command(CLI::App& parent, CommandAction& action) {
  CLI::App* sub = parent.add_subcommand("comm", "Simulated time of one collective (not implemented yet)");
  sub->callback([&action] {
    action = [] () -> int { throw ConfigError("", "", "moesim comm is not implemented yet"); };
  });
}

}  // namespace moesim::cli
