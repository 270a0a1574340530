// TLS 1.3 handshakes against a listener's ServerTlsContext, entirely in memory: the server is a
// session from ServerTlsContext::NewSession() (the production callbacks: ALPN, ticket keys),
// the client a plain OpenSSL SSL offering h2, the two joined by a BIO pair. The certificate is
// ECDSA P-256 (as in bench/h2_compare.py), made in this process.
//   full     ECDHE (X25519) + ECDSA signature, and the session ticket the server issues;
//   resumed  the client offers the ticket of a full handshake (PSK with ECDHE, what browsers
//            send): no certificate, no signature. A ticket under the current key is not
//            renewed (OnTicketKey answers 1), so every resumption offers (a copy of) the
//            same one.
// Time (real and CPU) covers both peers; the counter server_us is the server's CPU time alone
// (what a worker spends), allocs_per_handshake the server's and the client's heap allocations (C++
// and OpenSSL). BM_TlsHandshakeResumed also reports server_vs_full: its server_us over a full
// handshake's, measured in the same run (the regression check: it should stay well below 1;
// the target is 0.2).
// SLUICE_TLS_HANDSHAKES=N fixes the iteration count (for callgrind: the difference of two
// runs is the instructions of N2 - N1 handshakes without start-up).
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "bench/allocation_counter.h"
#include "benchmark/benchmark.h"
#include "proxy/tls/server_tls.h"
#include "tests/proxy/tls_test_util.h"

namespace sluice {
namespace {

// The calling thread's CPU time: the server's share, unaffected by other processes' load.
int64_t ThreadCpuNanos() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// A self-signed P-256 certificate for "localhost", written to a temporary directory (Create
// takes file paths), and the listener's context built from it; kept for the process's life.
struct Listener {
  std::shared_ptr<const ServerTlsContext> context;
  std::string error;

  Listener() {
    char tmpl[] = "/tmp/sluice-tls-bench-XXXXXX";
    const char* dir = mkdtemp(tmpl);
    if (dir == nullptr) {
      error = "mkdtemp failed";
      return;
    }
    const std::string cert_file = std::string(dir) + "/server.crt";
    const std::string key_file = std::string(dir) + "/server.key";
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = SelfSignedCert(key, "localhost", {"localhost"}, /*valid_seconds=*/86400);
    FILE* f = fopen(cert_file.c_str(), "w");
    PEM_write_X509(f, x);
    fclose(f);
    const mode_t mask = umask(077);  // a key file others may read draws a warning
    f = fopen(key_file.c_str(), "w");
    umask(mask);
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);

    ListenerTlsConfig config;
    config.certificates = {{cert_file, key_file, ""}};
    auto created = ServerTlsContext::Create(config, "tls-handshake-bench", /*http2=*/true);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);  // the context holds what it read
    if (!created.ok()) {
      error = std::string(created.status().message());
      return;
    }
    context = *std::move(created);
  }
};

Listener& SharedListener() {
  static Listener* listener = new Listener();
  return *listener;
}

// A client context as h2load's: TLS 1.3, ALPN h2, tickets kept by the caller.
SSL_CTX* NewClientContext() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  static const unsigned char kAlpn[] = "\x02h2\x08http/1.1";
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof(kAlpn) - 1);
  return ctx;
}

struct Outcome {
  bool ok = false;  // both finished, and the client holds a resumable session
  bool reused = false;
  int64_t server_ns = 0;
  SSL_SESSION* session = nullptr;  // the client's, with the server's ticket (the caller's)
};

// One handshake on a new connection, up to the client having read the server's ticket.
// `resume`: the session to offer, or null for a full handshake.
Outcome Handshake(const ServerTlsContext& server, SSL_CTX* client_ctx, SSL_SESSION* resume) {
  Outcome outcome;
  SSL* client = SSL_new(client_ctx);
  SSL_set_tlsext_host_name(client, "localhost");
  if (resume != nullptr) SSL_set_session(client, resume);
  SSL_set_connect_state(client);
  SSL* srv = server.NewSession();
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_bio(srv, server_bio, server_bio);
  bool client_done = false;
  bool server_done = false;
  // Flights alternate: ClientHello; ServerHello..Finished; client Finished; ticket.
  for (int round = 0; round < 8 && !(client_done && server_done); ++round) {
    if (!client_done) client_done = SSL_do_handshake(client) == 1;
    if (!server_done) {
      const int64_t start = ThreadCpuNanos();
      server_done = SSL_do_handshake(srv) == 1;
      outcome.server_ns += ThreadCpuNanos() - start;
    }
  }
  if (client_done && server_done) {
    char byte;
    size_t n = 0;
    SSL_read_ex(client, &byte, 1, &n);  // takes the NewSessionTicket; no data yet
    outcome.session = SSL_get1_session(client);
    outcome.ok = outcome.session != nullptr && SSL_SESSION_is_resumable(outcome.session);
    outcome.reused = SSL_session_reused(srv) == 1;
  }
  // Closed cleanly: an SSL freed mid-connection marks its session not resumable.
  SSL_set_shutdown(client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(srv);
  SSL_free(client);
  return outcome;
}

bool Ready(benchmark::State& state, Listener& listener) {
  if (listener.context) return true;
  state.SkipWithError(listener.error.c_str());
  return false;
}

void Report(benchmark::State& state, int64_t server_ns, uint64_t allocations_before) {
  const double iterations = static_cast<double>(std::max<int64_t>(1, state.iterations()));
  state.counters["server_us"] =
      benchmark::Counter(static_cast<double>(server_ns) / 1e3 / iterations);
  state.counters["allocs_per_handshake"] =
      benchmark::Counter(static_cast<double>(AllocationCount() - allocations_before) / iterations);
}

void BM_TlsHandshakeFull(benchmark::State& state) {
  Listener& listener = SharedListener();
  if (!Ready(state, listener)) return;
  SSL_CTX* client_ctx = NewClientContext();
  int64_t server_ns = 0;
  const uint64_t allocations_before = AllocationCount();
  for (auto _ : state) {
    Outcome outcome = Handshake(*listener.context, client_ctx, nullptr);
    SSL_SESSION_free(outcome.session);
    if (!outcome.ok || outcome.reused) {
      state.SkipWithError("no full handshake with a ticket");
      break;
    }
    server_ns += outcome.server_ns;
  }
  Report(state, server_ns, allocations_before);
  SSL_CTX_free(client_ctx);
}

void BM_TlsHandshakeResumed(benchmark::State& state) {
  Listener& listener = SharedListener();
  if (!Ready(state, listener)) return;
  SSL_CTX* client_ctx = NewClientContext();
  // The reference: full handshakes' server time in this run, and the ticket to offer.
  constexpr int kFull = 50;
  int64_t full_ns = 0;
  SSL_SESSION* ticket = nullptr;
  for (int i = 0; i < kFull; ++i) {
    Outcome outcome = Handshake(*listener.context, client_ctx, nullptr);
    full_ns += outcome.server_ns;
    SSL_SESSION_free(ticket);
    ticket = outcome.session;
  }
  int64_t server_ns = 0;
  const uint64_t allocations_before = AllocationCount();
  for (auto _ : state) {
    // A TLS 1.3 client uses a session once (then marks it spent): offer a copy each time.
    SSL_SESSION* offer = SSL_SESSION_dup(ticket);
    Outcome outcome = Handshake(*listener.context, client_ctx, offer);
    SSL_SESSION_free(offer);
    SSL_SESSION_free(outcome.session);
    if (!outcome.reused) {
      state.SkipWithError("the ticket was not accepted");
      break;
    }
    server_ns += outcome.server_ns;
  }
  Report(state, server_ns, allocations_before);
  const double server_per_handshake = static_cast<double>(server_ns) /
                                      static_cast<double>(std::max<int64_t>(1, state.iterations()));
  state.counters["server_vs_full"] =
      benchmark::Counter(server_per_handshake / (static_cast<double>(full_ns) / kFull));
  SSL_SESSION_free(ticket);
  SSL_CTX_free(client_ctx);
}

// Registered here rather than with BENCHMARK() so that SLUICE_TLS_HANDSHAKES can fix the
// iteration count.
const bool kRegistered = [] {
  const char* fixed = std::getenv("SLUICE_TLS_HANDSHAKES");
  const int64_t iterations = fixed != nullptr ? std::atoll(fixed) : 0;
  benchmark::internal::Benchmark* all[] = {
      benchmark::RegisterBenchmark("BM_TlsHandshakeFull", BM_TlsHandshakeFull),
      benchmark::RegisterBenchmark("BM_TlsHandshakeResumed", BM_TlsHandshakeResumed),
  };
  for (benchmark::internal::Benchmark* b : all) {
    b->Unit(benchmark::kMicrosecond);
    if (iterations > 0) b->Iterations(iterations);
  }
  return true;
}();

}  // namespace
}  // namespace sluice
