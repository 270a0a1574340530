#include "proxy/fleet/etcd_client.h"

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/strings.h"
#include "proxy/event/loop_context.h"
#include "proxy/net/name_lookup.h"

namespace sluice {
namespace {

// A host name is looked up again at least this often.
constexpr absl::Duration kResolveEvery = absl::Seconds(30);

// Unary replies are small: a range of the whole prefix is the largest.
constexpr size_t kMaxReply = 64 * 1024 * 1024;

template <typename T, typename Parse>
std::function<void(absl::StatusOr<std::string>)> Parsed(EtcdClient::Done<T> done, Parse parse) {
  return [done = std::move(done), parse](absl::StatusOr<std::string> body) {
    if (!body.ok()) {
      done(body.status());
      return;
    }
    done(parse(*body));
  };
}

}  // namespace

EtcdClient::EtcdClient(LoopContext* context, EtcdClientOptions options)
    : context_(context), options_(std::move(options)), resolved_(options_.endpoints.size()) {
  // New connections (a watch, a call beyond the kept-alive ones, after an outage) resume the
  // endpoint's last TLS session instead of a full handshake.
  if (options_.tls) TlsSessionSlot::EnableOn(options_.tls.get());
  for (size_t i = 0; i < options_.endpoints.size(); ++i) {
    tls_sessions_.push_back(std::make_unique<TlsSessionSlot>());
  }
}

EtcdClient::~EtcdClient() {
  *alive_ = false;
  CancelAll();
}

void EtcdClient::Address(size_t endpoint, std::function<void(absl::StatusOr<SocketAddress>)> done) {
  const HttpOrigin& e = options_.endpoints[endpoint];
  if (!e.named) {
    done(e.address);
    return;
  }
  Resolved& r = resolved_[endpoint];
  if (r.next < r.addresses.size() && absl::Now() - r.at < kResolveEvery) {
    done(r.addresses[r.next]);
    return;
  }
  int rc = 0;
  std::weak_ptr<bool> alive = alive_;
  auto on_resolved = [this, alive, endpoint,
                      done](absl::StatusOr<std::vector<SocketAddress>> addresses) {
    std::shared_ptr<bool> live = alive.lock();
    if (!live || !*live) return;
    if (!addresses.ok()) {
      done(absl::UnavailableError(absl::StrFormat("cannot resolve %s: %s",
                                                  options_.endpoints[endpoint].host,
                                                  std::string(addresses.status().message()))));
      return;
    }
    Resolved& resolved = resolved_[endpoint];
    resolved.addresses = *std::move(addresses);
    resolved.next = 0;
    resolved.at = absl::Now();
    done(resolved.addresses[0]);
  };
  if (NameLookup::Start(context_->loop(), e.host, e.port, std::move(on_resolved), &rc)) return;
  // Reported from a deferred task: never from inside the call that started the request.
  struct Later final : DeferredTask {
    std::weak_ptr<bool> alive;
    std::function<void(absl::StatusOr<SocketAddress>)> done;
    absl::Status status;
    void RunDeferred() override {
      std::unique_ptr<Later> self(this);
      std::shared_ptr<bool> live = alive.lock();
      if (live && *live) done(status);
    }
  };
  auto* later = new Later;
  later->alive = alive_;
  later->done = std::move(done);
  later->status =
      absl::UnavailableError(absl::StrFormat("cannot resolve %s: %s", e.host, uv_strerror(rc)));
  context_->Schedule(later);
}

void EtcdClient::AddressFailed(size_t endpoint) {
  Resolved& r = resolved_[endpoint];
  // The name's next address; once every one failed, resolve it again.
  if (++r.next >= r.addresses.size()) r.at = absl::InfinitePast();
}

void EtcdClient::CancelAll() {
  std::map<uint64_t, Call> calls;
  calls.swap(calls_);
  for (auto& [id, call] : calls) {
    if (call.request) CancelControlHttpRequest(call.request);
  }
  std::map<uint64_t, WatchState> watches;
  watches.swap(watches_);
  for (auto& [id, watch] : watches) {
    if (watch.request) CancelControlHttpRequest(watch.request);
  }
  pool_.CloseAll();
}

EtcdClientStats EtcdClient::stats() const {
  EtcdClientStats s;
  s.requests = wire_.requests;
  s.connections = wire_.connections;
  s.rx_bytes = wire_.rx_bytes;
  s.tx_bytes = wire_.tx_bytes;
  s.watch_messages = watch_messages_;
  s.watch_events = watch_events_;
  s.tls_handshakes = wire_.tls_handshakes;
  s.tls_resumed = wire_.tls_resumed;
  return s;
}

ControlHttpOptions EtcdClient::Options(size_t endpoint, bool pooled) {
  ControlHttpOptions options;
  options.timeout = options_.timeout;
  options.max_reply = kMaxReply;
  options.counters = &wire_;
  if (pooled) options.pool = &pool_;
  if (options_.endpoints[endpoint].tls) {
    options.tls = options_.tls;
    options.server_name = options_.endpoints[endpoint].host;
    options.tls_session = tls_sessions_[endpoint].get();
  }
  return options;
}

std::string EtcdClient::Request(const std::string& path, const std::string& body, bool with_token,
                                bool pooled) const {
  const HttpOrigin& e = options_.endpoints[current_];
  std::string authority = e.named ? absl::StrFormat("%s:%d", e.host, e.port) : e.address.ToString();
  std::string authorization;
  if (with_token && !token_.empty()) authorization = "Authorization: " + token_ + "\r\n";
  return absl::StrFormat(
      "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluice\r\nContent-Type: application/json\r\n"
      "Content-Length: %d\r\n%s%s\r\n%s",
      path, authority, body.size(), authorization, pooled ? "" : "Connection: close\r\n", body);
}

void EtcdClient::NextEndpoint(size_t failed) {
  // Several calls may fail on the same endpoint: move on once, not once per call.
  if (failed == current_ && options_.endpoints.size() > 1) {
    current_ = (current_ + 1) % options_.endpoints.size();
    LOG_INFO("etcd: trying %s next", endpoint());
  }
}

void EtcdClient::Unary(std::string path, std::string body,
                       std::function<void(absl::StatusOr<std::string>)> done) {
  uint64_t id = next_id_++;
  Call& call = calls_[id];
  call.path = std::move(path);
  call.body = std::move(body);
  call.done = std::move(done);
  Send(id);
}

void EtcdClient::Send(uint64_t id) {
  Call& call = calls_.at(id);
  if (!options_.username.empty() && token_.empty()) {
    Authenticate(id);
    return;
  }
  size_t endpoint = current_;
  ++call.attempts;
  Address(endpoint, [this, id, endpoint](absl::StatusOr<SocketAddress> address) {
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    if (!address.ok()) {
      ControlHttpReply failed;
      failed.error = std::string(address.status().message());
      OnReply(id, endpoint, failed);
      return;
    }
    it->second.request = StartControlHttpRequest(
        context_, *address, Request(it->second.path, it->second.body, true, true),
        Options(endpoint, true),
        [this, id, endpoint](const ControlHttpReply& reply) { OnReply(id, endpoint, reply); });
  });
}

void EtcdClient::Authenticate(uint64_t id) {
  size_t endpoint = current_;
  ++calls_.at(id).attempts;
  Address(endpoint, [this, id, endpoint](absl::StatusOr<SocketAddress> address) {
    auto call = calls_.find(id);
    if (call == calls_.end()) return;
    if (!address.ok()) {
      ControlHttpReply failed;
      failed.error = std::string(address.status().message());
      OnReply(id, endpoint, failed);
      return;
    }
    call->second.request = StartControlHttpRequest(
        context_, *address,
        Request("/v3/auth/authenticate", EtcdAuthBody(options_.username, options_.password), false,
                true),
        Options(endpoint, true), [this, id, endpoint](const ControlHttpReply& reply) {
          auto it = calls_.find(id);
          if (it == calls_.end()) return;
          it->second.request = nullptr;
          if (reply.ok && reply.status == 200) {
            absl::StatusOr<std::string> token = ParseEtcdAuthReply(reply.body);
            if (!token.ok()) {
              Fail(id, token.status());
              return;
            }
            token_ = *std::move(token);
            // The authentication and the call it was for count as one attempt.
            --it->second.attempts;
            Send(id);
            return;
          }
          if (reply.ok && reply.status < 500) {
            // Wrong credentials: no other endpoint will think otherwise.
            absl::Status s = EtcdErrorStatus(reply.status, reply.body);
            Fail(id, absl::UnauthenticatedError(absl::StrFormat("etcd refused user \"%s\": %s",
                                                                options_.username, s.message())));
            return;
          }
          // Unreachable: treat like any failed attempt.
          if (!reply.ok && reply.reused && !reply.received && !reply.timed_out) {
            // A kept-alive connection the server had closed: again, on another.
            --it->second.attempts;
            Authenticate(id);
            return;
          }
          ControlHttpReply failed = reply;
          OnReply(id, endpoint, failed);
        });
  });
}

void EtcdClient::OnReply(uint64_t id, size_t endpoint, const ControlHttpReply& reply) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  Call& call = it->second;
  call.request = nullptr;
  absl::Status error;
  if (!reply.ok && reply.reused && !reply.received && !reply.timed_out) {
    // A kept-alive connection the server closed (idle too long, or it restarted) just as the
    // call went out: it never got the call. Again, on another connection (each idle one is
    // tried at most once, then a new one is opened).
    --call.attempts;
    Send(id);
    return;
  }
  if (!reply.ok) {
    error = absl::UnavailableError(reply.error);
    // Too slow is not gone: this side's timer gave up on an answer that may still come.
    call.timed_out = call.timed_out || reply.timed_out;
    AddressFailed(endpoint);
    const Resolved& r = resolved_[endpoint];
    if (options_.endpoints[endpoint].named && r.next < r.addresses.size() && endpoint == current_) {
      // The same name's next address before the next endpoint.
      --call.attempts;
      Send(id);
      return;
    }
  } else if (reply.status == 200) {
    auto done = std::move(call.done);
    std::string body = reply.body;
    calls_.erase(it);
    done(std::move(body));
    return;
  } else {
    error = EtcdErrorStatus(reply.status, reply.body);
  }
  if (absl::IsUnauthenticated(error) && !options_.username.empty() && !call.reauthenticated) {
    // The token expired (etcd's simple tokens live five minutes by default): get a new one.
    call.reauthenticated = true;
    token_.clear();
    Send(id);
    return;
  }
  if (!absl::IsUnavailable(error)) {
    Fail(id, error);
    return;
  }
  call.errors += absl::StrFormat("%s%s: %s", call.errors.empty() ? "" : "; ",
                                 options_.endpoints[endpoint].url, error.message());
  // So is etcd's own "request timed out" (or "too many requests") under load: it may still
  // carry the call out. The fleet keeps its link over such failures for a while.
  call.timed_out = call.timed_out || absl::StrContains(error.message(), "timed out") ||
                   absl::StrContains(error.message(), "too many requests");
  NextEndpoint(endpoint);
  if (call.attempts < options_.endpoints.size()) {
    Send(id);
    return;
  }
  if (call.timed_out) {
    Fail(id, absl::DeadlineExceededError("etcd did not answer in time: " + call.errors));
    return;
  }
  Fail(id, absl::UnavailableError("etcd unreachable: " + call.errors));
}

void EtcdClient::Fail(uint64_t id, absl::Status status) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  auto done = std::move(it->second.done);
  calls_.erase(it);
  done(std::move(status));
}

void EtcdClient::Range(const std::string& key, const std::string& range_end,
                       Done<EtcdRangeResult> done) {
  Unary("/v3/kv/range", EtcdRangeBody(key, range_end),
        Parsed<EtcdRangeResult>(std::move(done), ParseEtcdRangeReply));
}

void EtcdClient::Put(const std::string& key, const std::string& value, int64_t lease,
                     Done<int64_t> done) {
  Unary("/v3/kv/put", EtcdPutBody(key, value, lease),
        Parsed<int64_t>(std::move(done), ParseEtcdPutReply));
}

void EtcdClient::Txn(const EtcdTxn& txn, Done<EtcdTxnResult> done) {
  Unary("/v3/kv/txn", EtcdTxnBody(txn), Parsed<EtcdTxnResult>(std::move(done), ParseEtcdTxnReply));
}

void EtcdClient::LeaseGrant(absl::Duration ttl, Done<EtcdLease> done) {
  Unary("/v3/lease/grant", EtcdLeaseGrantBody(absl::ToInt64Seconds(ttl)),
        Parsed<EtcdLease>(std::move(done), ParseEtcdLeaseGrantReply));
}

void EtcdClient::LeaseKeepAlive(int64_t id, Done<EtcdLease> done) {
  Unary("/v3/lease/keepalive", EtcdLeaseIdBody(id),
        Parsed<EtcdLease>(std::move(done), ParseEtcdKeepAliveReply));
}

void EtcdClient::LeaseRevoke(int64_t id, Done<bool> done) {
  Unary("/v3/lease/revoke", EtcdLeaseIdBody(id),
        Parsed<bool>(std::move(done), [](std::string_view body) -> absl::StatusOr<bool> {
          absl::Status s = ParseEtcdRevokeReply(body);
          if (!s.ok()) return s;
          return true;
        }));
}

uint64_t EtcdClient::Watch(const std::string& key, const std::string& range_end,
                           int64_t start_revision, OnWatchMessage on_message, OnWatchEnd on_end) {
  uint64_t id = next_id_++;
  WatchState& watch = watches_[id];
  watch.on_message = std::move(on_message);
  watch.on_end = std::move(on_end);
  size_t endpoint = current_;
  ControlHttpOptions options = Options(endpoint, false);
  options.on_body = [this, id](int, std::string_view data) {
    auto it = watches_.find(id);
    if (it == watches_.end()) return;
    std::shared_ptr<EtcdWatchDecoder> decoder = it->second.decoder;
    absl::Status s = decoder->Feed(data, [this, id](const EtcdWatchMessage& m) {
      ++watch_messages_;
      watch_events_ += m.events.size();
      auto w = watches_.find(id);
      if (w != watches_.end()) w->second.on_message(m);
    });
    if (!s.ok()) EndWatch(id, s);
  };
  std::string request =
      Request("/v3/watch", EtcdWatchBody(key, range_end, start_revision), true, false);
  Address(endpoint, [this, id, endpoint, request = std::move(request),
                     options = std::move(options)](absl::StatusOr<SocketAddress> address) mutable {
    if (!watches_.count(id)) return;
    if (!address.ok()) {
      NextEndpoint(endpoint);
      EndWatch(id, address.status());
      return;
    }
    watches_[id].request =
        StartControlHttpRequest(context_, *address, std::move(request), std::move(options),
                                [this, id, endpoint](const ControlHttpReply& reply) {
                                  auto it = watches_.find(id);
                                  if (it == watches_.end()) return;
                                  it->second.request = nullptr;
                                  absl::Status status;
                                  if (!reply.ok) {
                                    AddressFailed(endpoint);
                                    NextEndpoint(endpoint);
                                    status = absl::UnavailableError(absl::StrFormat(
                                        "%s: %s", options_.endpoints[endpoint].url, reply.error));
                                  } else if (reply.status != 200) {
                                    status = EtcdErrorStatus(reply.status, reply.body);
                                    if (absl::IsUnauthenticated(status)) token_.clear();
                                  } else {
                                    status = absl::UnavailableError("etcd ended the watch");
                                  }
                                  EndWatch(id, status);
                                });
  });
  return id;
}

void EtcdClient::EndWatch(uint64_t id, absl::Status status) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  if (it->second.request) CancelControlHttpRequest(it->second.request);
  OnWatchEnd on_end = std::move(it->second.on_end);
  watches_.erase(it);
  on_end(status);
}

void EtcdClient::CancelWatch(uint64_t id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  if (it->second.request) CancelControlHttpRequest(it->second.request);
  watches_.erase(it);
}

}  // namespace sluice
