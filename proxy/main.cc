// sluice: an HTTP edge proxy. See README.md and docs/DESIGN.md.
#include <csignal>
#include <cstdio>
#include <string>

#include "common/log.h"
#include "proxy/config/cli.h"
#include "proxy/event/signal_set.h"
#include "proxy/server.h"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  sluice::SignalSet::HoldControlSignals();  // until the server's handlers are in
  absl::StatusOr<sluice::CommandLine> cli = sluice::ParseCommandLine(argc, argv);
  if (!cli.ok()) {
    std::fprintf(stderr, "sluice: %s\n\n%s", std::string(cli.status().message()).c_str(),
                 sluice::UsageText().c_str());
    return 2;
  }
  if (cli->help) {
    std::fputs(sluice::UsageText().c_str(), stdout);
    return 0;
  }
  if (cli->version) {
    std::puts("sluice " SLUICE_VERSION);
    return 0;
  }
  absl::StatusOr<sluice::ConfigPtr> config = sluice::ConfigFromCommandLine(*cli);
  if (!config.ok()) {
    std::fprintf(stderr, "sluice: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  if (cli->check) {
    std::printf("sluice: configuration %s is valid\n", (*config)->source.c_str());
    return 0;
  }
  sluice::SetLogLevel((*config)->log_level);
  sluice::Server server(*std::move(cli), *std::move(config));
  return server.Run();
}
