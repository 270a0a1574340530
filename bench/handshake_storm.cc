// sluice_handshake_storm: an evacuated region's clients reconnecting to a savior all at once
// (bench/handshakes.py runs it).
//
// Every simulated client is one TlsSessionSlot and, while it talks, one request of sluice's own
// HTTP client (proxy/http/control_http_client.h) over TLS, all on one libuv loop:
//
//   sluice_handshake_storm --ca CA.pem --clients N --storm HOST:PORT [--prime HOST:PORT]
//                          [--server-name NAME] [--spread-ms 1000] [--prime-concurrency 200]
//                          [--timeout 20] [--gap-ms 0] [--path /]
//
//   1. with --prime (the region being evacuated): every client makes one GET (Connection: close)
//      there, --prime-concurrency at a time, and keeps the session ticket it was given;
//   2. after --gap-ms (a harness measures the calm before the storm there), every client makes
//      one GET to --storm (the savior), the starts spread evenly over --spread-ms, offering the
//      session it holds. A client whose ticket the savior can decrypt resumes; the others make
//      a full handshake.
// Each phase's requests time out after --timeout seconds; a request the server answered with a
// status other than 2xx counts as an error. The latency of a storm request runs from its start
// (the connect) to the end of its reply. Each slot keeps the session the server gave, as
// sluice's own clients do (etcd, peers, origins).
//
// Progress goes to stderr as "handshake_storm: PHASE mono=SECONDS unix=SECONDS cpu_s=SECONDS"
// (CLOCK_MONOTONIC, the wall clock, and this process's CPU time), so a harness can sample the
// servers at the phases' edges; then the errors by kind. Stdout ends with one line:
//   storm: clients=N ok=.. errors=.. resumed=.. full=.. p50_ms=.. p99_ms=.. max_ms=..
//          elapsed_ms=..
// (resumed and full: completed handshakes of the storm; elapsed_ms: from the first storm start
// to the last reply), after a "prime: ..." line when there was a prime phase (sessions: the
// clients that held a session after it) and a "storm_client: ..." line with this process's CPU
// time over the storm, how late it started a client at worst and how many were in flight at once.
// Exit status: 0 once both phases ran (their figures say how well), 1 when the CA does not load,
// 2 on bad arguments.
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/socket_address.h"
#include "proxy/event/loop_context.h"
#include "proxy/http/control_http_client.h"
#include "proxy/tls/client_tls.h"
#include "proxy/tls/session_cache.h"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string ca_file;
  std::string server_name;  // empty: the storm address's IP
  int clients = 0;
  std::optional<SocketAddress> prime;
  std::optional<SocketAddress> storm;
  int spread_ms = 1000;
  int prime_concurrency = 200;
  double timeout_s = 20;
  int gap_ms = 0;
  std::string path = "/";
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "sluice_handshake_storm: %s\nusage: sluice_handshake_storm --ca CA.pem --clients N "
               "--storm HOST:PORT [--prime HOST:PORT] [--server-name NAME] [--spread-ms MS] "
               "[--prime-concurrency N] [--timeout SECONDS] [--gap-ms MS] [--path /PATH]\n",
               why.c_str());
  std::exit(2);
}

int IntArg(const std::string& name, const char* value, int low, int high) {
  int n = 0;
  if (!absl::SimpleAtoi(value, &n) || n < low || n > high) {
    Usage(absl::StrFormat("%s: must be an integer %d..%d, got \"%s\"", name, low, high, value));
  }
  return n;
}

SocketAddress AddressArg(const std::string& name, const char* value) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse(value);
  if (!address.ok()) {
    Usage(absl::StrFormat("%s: must be HOST:PORT (an IP address), got \"%s\": %s", name, value,
                          address.status().message()));
  }
  return *address;
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) Usage(flag + ": needs a value");
    const char* value = argv[++i];
    if (flag == "--ca") {
      o.ca_file = value;
    } else if (flag == "--server-name") {
      o.server_name = value;
    } else if (flag == "--clients") {
      o.clients = IntArg(flag, value, 1, 1000000);
    } else if (flag == "--prime") {
      o.prime = AddressArg(flag, value);
    } else if (flag == "--storm") {
      o.storm = AddressArg(flag, value);
    } else if (flag == "--spread-ms") {
      o.spread_ms = IntArg(flag, value, 0, 3600000);
    } else if (flag == "--prime-concurrency") {
      o.prime_concurrency = IntArg(flag, value, 1, 1000000);
    } else if (flag == "--timeout") {
      double d = 0;
      if (!absl::SimpleAtod(value, &d) || !(d >= 0.1 && d <= 3600)) {
        Usage(
            absl::StrFormat("%s: must be a number of seconds 0.1..3600, got \"%s\"", flag, value));
      }
      o.timeout_s = d;
    } else if (flag == "--gap-ms") {
      o.gap_ms = IntArg(flag, value, 0, 3600000);
    } else if (flag == "--path") {
      o.path = value;
      if (o.path.empty() || o.path[0] != '/' ||
          o.path.find_first_of(" \r\n") != std::string::npos) {
        Usage(absl::StrFormat("%s: must start with / and hold no space or line break, got \"%s\"",
                              flag, value));
      }
    } else {
      Usage("unknown flag " + flag);
    }
  }
  if (o.ca_file.empty()) Usage("--ca is required (the CA that signed the servers' certificate)");
  if (o.clients == 0) Usage("--clients is required");
  if (!o.storm) Usage("--storm is required");
  if (o.server_name.empty()) o.server_name = o.storm->IpString();
  return o;
}

// The descriptor limit's soft value raised to the hard one: each client in flight holds a socket.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    std::fprintf(stderr, "sluice_handshake_storm: could not raise the descriptor limit\n");
  }
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// Nearest rank; 0 when there is nothing.
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p / 100 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

void OnHeartbeat(uv_timer_t*) {}

// One phase's outcome.
struct PhaseResult {
  int ok = 0;
  int errors = 0;
  ControlHttpCounters counters;
  std::vector<double> latency_ms;          // of the requests that succeeded
  std::map<std::string, int> error_kinds;  // why, and how many
  bool started = false;
  Clock::time_point first_start;
  Clock::time_point last_end;  // of the last request that ended (replied, failed or abandoned)
  double late_max_ms = 0;      // the latest start after its due time (the client's own lag)
  int max_in_flight = 0;
  double cpu_s = 0;  // this process's CPU time over the phase
};

class Storm {
 public:
  Storm(const Options& options, LoopContext* context, ClientTlsContext tls)
      : options_(options),
        context_(context),
        tls_(std::move(tls)),
        clients_(new Client[static_cast<size_t>(options.clients)]) {
    request_ = absl::StrFormat("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                               options_.path, options_.server_name);
  }

  // Both phases (the prime only with --prime). Every request has ended when it returns.
  void Run();
  // The phases' figures; their counters are written by requests until the loop's last run.
  const PhaseResult& prime() const { return prime_; }
  PhaseResult& storm() { return storm_; }
  // Clients that held a session after the prime.
  int sessions_after_prime() const { return sessions_after_prime_; }

 private:
  struct Client {
    TlsSessionSlot session;
    ControlHttpRequest* request = nullptr;  // in flight; cleared by its callback
    Clock::time_point started;
  };

  // Clients that hold a session now.
  int Sessions() const {
    int n = 0;
    for (int i = 0; i < options_.clients; ++i) {
      if (clients_[static_cast<size_t>(i)].session.session() != nullptr) ++n;
    }
    return n;
  }

  // Starts client i's request to `address`, counted in `result`.
  void Start(int i, const SocketAddress& address, PhaseResult* result);
  void Finish(int i, const ControlHttpReply& reply, PhaseResult* result);
  // Runs the loop until `done()` or `seconds` passed; returns done().
  bool RunUntil(const std::function<bool()>& done, double seconds);
  // The requests still in flight are given up on, each counted as an error.
  void Abandon(PhaseResult* result);
  void Phase(const char* phase) const {
    timespec wall{};
    clock_gettime(CLOCK_REALTIME, &wall);
    std::fprintf(stderr, "handshake_storm: %s mono=%.6f unix=%.6f cpu_s=%.3f\n", phase,
                 Seconds(Clock::now().time_since_epoch()),
                 static_cast<double>(wall.tv_sec) + static_cast<double>(wall.tv_nsec) / 1e9,
                 CpuSeconds());
    std::fflush(stderr);
  }

  void PrimePhase(PhaseResult* result);
  void StormPhase(PhaseResult* result);

  const Options& options_;
  LoopContext* context_;
  ClientTlsContext tls_;
  std::string request_;
  std::unique_ptr<Client[]> clients_;
  int in_flight_ = 0;
  int finished_ = 0;  // of the phase under way
  uv_timer_t heartbeat_{};
  PhaseResult prime_;
  PhaseResult storm_;
  int sessions_after_prime_ = 0;
};

void Storm::Run() {
  uv_timer_init(context_->loop(), &heartbeat_);
  // Bounds how late a wait notices its end, and how late a storm client starts.
  uv_timer_start(&heartbeat_, OnHeartbeat, 1, 1);
  if (options_.prime) {
    PrimePhase(&prime_);
    sessions_after_prime_ = Sessions();
  }
  if (options_.gap_ms > 0) {
    Phase("gap_begin");
    RunUntil([] { return false; }, options_.gap_ms / 1000.0);
  }
  StormPhase(&storm_);
  uv_close(reinterpret_cast<uv_handle_t*>(&heartbeat_), nullptr);
}

void Storm::PrimePhase(PhaseResult* result) {
  Phase("prime_begin");
  const double cpu_before = CpuSeconds();
  finished_ = 0;
  int next = 0;
  // Each reply starts the next client: at most --prime-concurrency in flight.
  auto fill = [&] {
    while (next < options_.clients && in_flight_ < options_.prime_concurrency) {
      Start(next++, *options_.prime, result);
    }
  };
  fill();
  const double bound =
      options_.timeout_s * (1 + options_.clients / options_.prime_concurrency) + 10;
  RunUntil(
      [&] {
        fill();
        return finished_ == options_.clients;
      },
      bound);
  Abandon(result);
  result->cpu_s = CpuSeconds() - cpu_before;
  Phase("prime_end");
}

void Storm::StormPhase(PhaseResult* result) {
  Phase("storm_begin");
  const double cpu_before = CpuSeconds();
  finished_ = 0;
  const Clock::time_point begin = Clock::now();
  const double spread_ms = options_.spread_ms;
  int next = 0;
  // Client i is due i/N of the spread after the beginning; each pass of the loop (every
  // millisecond at least, the heartbeat) starts every client that is due.
  auto start_due = [&] {
    const double elapsed_ms = Millis(Clock::now() - begin);
    while (next < options_.clients) {
      const double due_ms = spread_ms * next / options_.clients;
      if (due_ms > elapsed_ms) break;
      result->late_max_ms = std::max(result->late_max_ms, elapsed_ms - due_ms);
      Start(next++, *options_.storm, result);
    }
  };
  RunUntil(
      [&] {
        start_due();
        return finished_ == options_.clients;
      },
      spread_ms / 1000 + options_.timeout_s + 10);
  Abandon(result);
  result->cpu_s = CpuSeconds() - cpu_before;
  Phase("storm_end");
}

void Storm::Start(int i, const SocketAddress& address, PhaseResult* result) {
  Client& client = clients_[static_cast<size_t>(i)];
  ControlHttpOptions options;
  options.timeout = absl::Seconds(options_.timeout_s);
  options.max_reply = 64 * 1024;
  options.tls = tls_;
  options.server_name = options_.server_name;
  options.tls_session = &client.session;
  options.counters = &result->counters;
  client.started = Clock::now();
  if (!result->started) {
    result->started = true;
    result->first_start = client.started;
  }
  ++in_flight_;
  result->max_in_flight = std::max(result->max_in_flight, in_flight_);
  client.request = StartControlHttpRequest(
      context_, address, request_, std::move(options),
      [this, i, result](const ControlHttpReply& reply) { Finish(i, reply, result); });
}

void Storm::Finish(int i, const ControlHttpReply& reply, PhaseResult* result) {
  Client& client = clients_[static_cast<size_t>(i)];
  client.request = nullptr;
  --in_flight_;
  ++finished_;
  result->last_end = Clock::now();
  if (reply.ok && reply.status >= 200 && reply.status < 300) {
    ++result->ok;
    result->latency_ms.push_back(Millis(result->last_end - client.started));
    return;
  }
  ++result->errors;
  ++result->error_kinds[reply.ok ? absl::StrFormat("status %d", reply.status) : reply.error];
}

bool Storm::RunUntil(const std::function<bool()>& done, double seconds) {
  const Clock::time_point deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                        std::chrono::duration<double>(seconds));
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    uv_run(context_->loop(), UV_RUN_ONCE);
  }
  return true;
}

void Storm::Abandon(PhaseResult* result) {
  for (int i = 0; i < options_.clients; ++i) {
    Client& client = clients_[static_cast<size_t>(i)];
    if (!client.request) continue;
    CancelControlHttpRequest(client.request);
    client.request = nullptr;
    --in_flight_;
    ++result->errors;
    ++result->error_kinds["abandoned: no reply within the phase's bound"];
    result->last_end = Clock::now();
  }
}

// From the phase's first start to its last end, in milliseconds.
double Elapsed(const PhaseResult& result) {
  return result.started ? Millis(result.last_end - result.first_start) : 0;
}

void PrintErrors(const char* phase, const PhaseResult& result) {
  for (const auto& [why, count] : result.error_kinds) {
    std::fprintf(stderr, "handshake_storm: %s error x%d: %s\n", phase, count, why.c_str());
  }
}

int Main(int argc, char** argv) {
  const Options options = Parse(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  RaiseDescriptorLimit();
  SetLogLevel(LogLevel::kWarning);
  ClientTlsFiles files;
  files.ca_file = options.ca_file;
  absl::StatusOr<ClientTlsContext> tls = MakeClientTlsContext(files);
  if (!tls.ok()) {
    std::fprintf(stderr, "sluice_handshake_storm: %s\n",
                 std::string(tls.status().message()).c_str());
    return 1;
  }
  TlsSessionSlot::EnableOn(tls->get());

  uv_loop_t loop;
  uv_loop_init(&loop);
  auto context = std::make_unique<LoopContext>(&loop);
  auto storm = std::make_unique<Storm>(options, context.get(), *tls);
  storm->Run();

  if (options.prime) {
    const PhaseResult& prime = storm->prime();
    PrintErrors("prime", prime);
    std::printf(
        "prime: clients=%d ok=%d errors=%d resumed=%llu full=%llu sessions=%d elapsed_ms=%.0f\n",
        options.clients, prime.ok, prime.errors,
        static_cast<unsigned long long>(prime.counters.tls_resumed),
        static_cast<unsigned long long>(prime.counters.tls_handshakes),
        storm->sessions_after_prime(), Elapsed(prime));
  }
  PhaseResult& result = storm->storm();
  PrintErrors("storm", result);
  std::sort(result.latency_ms.begin(), result.latency_ms.end());
  std::printf("storm_client: cpu_s=%.3f late_max_ms=%.1f max_in_flight=%d\n", result.cpu_s,
              result.late_max_ms, result.max_in_flight);
  std::printf(
      "storm: clients=%d ok=%d errors=%d resumed=%llu full=%llu p50_ms=%.2f p99_ms=%.2f "
      "max_ms=%.2f elapsed_ms=%.0f\n",
      options.clients, result.ok, result.errors,
      static_cast<unsigned long long>(result.counters.tls_resumed),
      static_cast<unsigned long long>(result.counters.tls_handshakes),
      Percentile(result.latency_ms, 50), Percentile(result.latency_ms, 99),
      result.latency_ms.empty() ? 0.0 : result.latency_ms.back(), Elapsed(result));
  std::fflush(stdout);

  context->Close();
  uv_run(&loop, UV_RUN_DEFAULT);  // the close callbacks of the requests and the heartbeat
  storm.reset();
  context.reset();
  if (int rc = uv_loop_close(&loop); rc != 0) {
    std::fprintf(stderr, "sluice_handshake_storm: the loop did not close: %s\n", uv_strerror(rc));
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace sluice

int main(int argc, char** argv) { return sluice::Main(argc, argv); }
