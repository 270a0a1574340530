#include "proxy/config/cli.h"

#include "proxy/config/admin_config_loader.h"

#include <algorithm>
#include "common/strings.h"

#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "proxy/config/config_loader.h"

namespace sluice {

std::string UsageText() {
  return absl::StrFormat(
      "usage: sluice --config FILE\n"
      "       sluice --check --config FILE\n"
      "       sluice --listen ADDRESS --origin ADDRESS[,ADDRESS...] [--workers N]\n"
      "\n"
      "  --config FILE      YAML configuration (default %s)\n"
      "  --check            validate the configuration and exit\n"
      "  --listen ADDRESS   quick start: listen here (for example %s)\n"
      "  --origin LIST      quick start: forward everything to these endpoints\n"
      "  --workers N        worker threads (default: one per CPU)\n"
      "  --log-level LEVEL  debug, info, warn or error\n"
      "  --admin ADDRESS    the admin listener (default %s; off: none)\n"
      "  --version          print the version\n",
      kDefaultConfigPath, kDefaultListenAddress, kDefaultAdminAddress);
}

absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv) {
  CommandLine cli;
  for (int i = 1; i < argc; ++i) cli.args.emplace_back(argv[i]);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline_value = false;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline_value = true;
    }
    auto take_value = [&]() -> absl::StatusOr<std::string> {
      if (has_inline_value) return value;
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(absl::StrFormat("%s needs a value", arg));
      }
      return std::string(argv[++i]);
    };
    if (arg == "--config" || arg == "-c") {
      ASSIGN_OR_RETURN(cli.config_path, take_value());
    } else if (arg == "--check") {
      cli.check = true;
    } else if (arg == "--listen") {
      ASSIGN_OR_RETURN(cli.listen, take_value());
    } else if (arg == "--origin") {
      ASSIGN_OR_RETURN(std::string list, take_value());
      size_t start = 0;
      while (start <= list.size()) {
        size_t comma = std::min(list.find(',', start), list.size());
        if (comma > start) cli.origins.push_back(list.substr(start, comma - start));
        start = comma + 1;
      }
      if (cli.origins.empty()) return absl::InvalidArgumentError("--origin needs an address");
    } else if (arg == "--workers") {
      ASSIGN_OR_RETURN(std::string text, take_value());
      if (!ParseInteger(text, &cli.workers) || cli.workers < 0 || cli.workers > 256) {
        return absl::InvalidArgumentError(
            absl::StrFormat("--workers must be 0..256 (0: one per CPU), got \"%s\"", text));
      }
    } else if (arg == "--log-level") {
      ASSIGN_OR_RETURN(cli.log_level, take_value());
    } else if (arg == "--admin") {
      ASSIGN_OR_RETURN(cli.admin, take_value());
      AdminConfig probe;
      RETURN_IF_ERROR(ApplyAdminFlag(cli.admin, &probe));
    } else if (arg == "--help" || arg == "-h") {
      cli.help = true;
    } else if (arg == "--version") {
      cli.version = true;
    } else {
      return absl::InvalidArgumentError(absl::StrFormat("unknown argument \"%s\"", argv[i]));
    }
  }
  bool quick = !cli.listen.empty() || !cli.origins.empty();
  if (quick && !cli.config_path.empty()) {
    return absl::InvalidArgumentError("use either --config or --listen/--origin, not both");
  }
  if (quick && cli.origins.empty()) {
    return absl::InvalidArgumentError("--listen needs --origin ADDRESS[,ADDRESS...]");
  }
  if (quick && cli.listen.empty()) cli.listen = kDefaultListenAddress;
  if (!quick && cli.config_path.empty()) cli.config_path = kDefaultConfigPath;
  if (cli.check && quick) {
    return absl::InvalidArgumentError("--check validates a file: use --check --config FILE");
  }
  return cli;
}

absl::StatusOr<ConfigPtr> ConfigFromCommandLine(const CommandLine& cli) {
  if (!cli.config_path.empty()) {
    ASSIGN_OR_RETURN(ConfigPtr loaded, LoadConfigFile(cli.config_path));
    if (cli.workers < 0 && cli.log_level.empty() && cli.admin.empty()) return loaded;
    auto config = std::make_shared<Config>(*loaded);
    if (cli.workers >= 0) config->workers = cli.workers == 0 ? DefaultWorkerCount() : cli.workers;
    if (!cli.log_level.empty()) {
      ASSIGN_OR_RETURN(config->log_level, ParseLogLevel(cli.log_level));
    }
    if (!cli.admin.empty()) RETURN_IF_ERROR(ApplyAdminFlag(cli.admin, &config->admin));
    return ConfigPtr(std::move(config));
  }

  auto config = std::make_shared<Config>();
  config->source = "command line";
  ListenerConfig listener;
  absl::StatusOr<SocketAddress> listen = SocketAddress::Parse(cli.listen);
  if (!listen.ok()) {
    return absl::InvalidArgumentError("--listen: " + std::string(listen.status().message()));
  }
  listener.address = *listen;
  listener.name = "default";
  config->listeners.push_back(listener);

  ClusterConfig cluster;
  cluster.name = "origin";
  for (const std::string& origin : cli.origins) {
    absl::StatusOr<EndpointConfig> endpoint = ParseEndpoint(origin);
    if (!endpoint.ok()) {
      return absl::InvalidArgumentError("--origin: " + std::string(endpoint.status().message()));
    }
    cluster.endpoints.push_back(std::move(*endpoint));
  }
  config->clusters.push_back(std::move(cluster));
  RouteConfig route;
  route.name = "/";
  route.cluster = "origin";
  config->routes.push_back(route);
  config->workers = cli.workers < 0 ? 0 : cli.workers;
  if (!cli.log_level.empty()) {
    ASSIGN_OR_RETURN(config->log_level, ParseLogLevel(cli.log_level));
  }
  config->admin = DefaultAdminConfig();
  if (!cli.admin.empty()) RETURN_IF_ERROR(ApplyAdminFlag(cli.admin, &config->admin));
  RETURN_IF_ERROR(ValidateConfig(*config));
  return ConfigPtr(std::move(config));
}

}  // namespace sluice
