// Command-line flags of the `sluice` binary:
//   sluice --config FILE            run with a configuration file
//   sluice --check --config FILE    validate it and exit (0 valid, 1 invalid)
//   sluice --listen ADDR --origin ADDR[,ADDR...] [--workers N]
//                                   quick start: one route to one cluster, all defaults
//   --admin ADDRESS|off             the admin listener (default 127.0.0.1:9901)
#ifndef SLUICE_PROXY_CONFIG_CLI_H_
#define SLUICE_PROXY_CONFIG_CLI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proxy/config/config.h"

namespace sluice {

struct CommandLine {
  std::string config_path;           // --config
  bool check = false;                // --check
  std::string listen;                // --listen
  std::vector<std::string> origins;  // --origin, comma-separated
  int workers = -1;                  // --workers; -1: not given
  std::string log_level;             // --log-level
  std::string admin;                 // --admin ADDRESS or off
  bool help = false;
  bool version = false;
  std::vector<std::string> args;  // every argument after the program name, as given
};

absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv);

// The configuration the command line asks for: the file, or the quick-start flags.
absl::StatusOr<ConfigPtr> ConfigFromCommandLine(const CommandLine& cli);

std::string UsageText();

}  // namespace sluice

#endif  // SLUICE_PROXY_CONFIG_CLI_H_
