// moesim: discrete-event simulator of MoE LLM inference on rack-scale GPU systems.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "sim/cli/command.h"
#include "sim/config/error.h"

int main(int argc, char** argv) {
  CLI::App app{"moesim: simulate MoE LLM inference on rack-scale GPU systems"};
  app.set_version_flag("--version", std::string("moesim ") + MOESIM_VERSION);
  app.require_subcommand(1);
  moesim::cli::CommandAction action;
  moesim::cli::add_describe_command(app, action);
  moesim::cli::add_comm_command(app, action);
  moesim::cli::add_run_command(app, action);
  moesim::cli::add_calibrate_command(app, action);
  moesim::cli::add_validate_command(app, action);
  moesim::cli::add_step_command(app, action);
  moesim::cli::add_frontier_command(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Bad command-line arguments are bad input: one line, exit 2.
    std::fprintf(stderr, "moesim: error: %s (see moesim --help)\n", e.what());
    return 2;
  }
  try {
    return action ? action() : 0;
  } catch (const moesim::ConfigError& e) {
    std::fprintf(stderr, "moesim: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moesim: internal error: %s\n", e.what());
    return 1;
  }
}
