// Sub-commands of the moesim CLI. Each sub-command lives in its own
// sim/cli/cmd_<name>.cc and exposes one registration function that adds its
// CLI11 sub-app to `parent` and, when the sub-app is selected, stores the work
// to run in `action`. main() runs the action and maps exceptions to exit codes:
// moesim::ConfigError (bad input) -> one line on stderr, exit 2; any other
// exception -> exit 1. An action returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace moesim::cli {

using CommandAction = std::function<int()>;

void add_describe_command(CLI::App& parent, CommandAction& action);
void add_comm_command(CLI::App& parent, CommandAction& action);
void add_run_command(CLI::App& parent, CommandAction& action);
void add_calibrate_command(CLI::App& parent, CommandAction& action);
void add_validate_command(CLI::App& parent, CommandAction& action);
void add_step_command(CLI::App& parent, CommandAction& action);
void add_frontier_command(CLI::App& parent, CommandAction& action);

}  // namespace moesim::cli
