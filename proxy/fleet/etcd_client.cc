#include "proxy/fleet/etcd_client.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/strings.h"
#include "proxy/event/loop_context.h"
#include "proxy/fleet/etcd_grpc_protocol.h"
#include "proxy/net/name_lookup.h"

namespace sluice {
namespace {

// A host name is looked up again at least this often.
constexpr absl::Duration kResolveEvery = absl::Seconds(30);

// Unary replies are small: a range of the whole prefix is the largest.
constexpr size_t kMaxReply = 64 * 1024 * 1024;

// An endpoint that does not speak gRPC is used through its JSON gateway this long.
constexpr absl::Duration kJsonFor = absl::Minutes(1);

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
    : context_(context),
      options_(std::move(options)),
      resolved_(options_.endpoints.size()),
      json_until_(options_.endpoints.size(), absl::InfinitePast()) {
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
  if (channel_) channel_->Abandon();
  channel_ = nullptr;
  keepalive_stream_ = nullptr;
  keepalive_sent_.clear();
  keepalives_.clear();
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
  s.keepalives_grpc = keepalives_grpc_;
  s.keepalives_json = keepalives_json_;
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
  if (!UseGrpc()) {
    KeepAliveJson(id, std::move(done));
    return;
  }
  uint64_t call_id = next_id_++;
  auto call = std::make_unique<KeepAliveCall>(this, call_id);
  call->lease = id;
  call->done = std::move(done);
  KeepAliveCall* sent = call.get();
  keepalives_.emplace(call_id, std::move(call));
  SendKeepAlive(sent);
}

void EtcdClient::KeepAliveJson(int64_t lease, Done<EtcdLease> done) {
  ++keepalives_json_;
  Unary("/v3/lease/keepalive", EtcdLeaseIdBody(lease),
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
  if (!UseGrpc()) {
    return WatchJson(key, range_end, start_revision, std::move(on_message), std::move(on_end));
  }
  uint64_t id = next_id_++;
  WatchState& watch = watches_[id];
  watch.on_message = std::move(on_message);
  watch.on_end = std::move(on_end);
  watch.key = key;
  watch.range_end = range_end;
  watch.start_revision = start_revision;
  GrpcChannel* channel = Channel();
  watch.endpoint = channel_endpoint_;
  watch.grpc = channel->OpenStream(kEtcdWatchPath, Metadata(/*watch=*/true), this);
  channel->Send(watch.grpc, EtcdGrpcWatchCreateRequest(key, range_end, start_revision));
  return id;
}

uint64_t EtcdClient::WatchJson(const std::string& key, const std::string& range_end,
                               int64_t start_revision, OnWatchMessage on_message,
                               OnWatchEnd on_end) {
  uint64_t id = next_id_++;
  WatchState& watch = watches_[id];
  watch.on_message = std::move(on_message);
  watch.on_end = std::move(on_end);
  StartWatchJson(id, key, range_end, start_revision);
  return id;
}

void EtcdClient::StartWatchJson(uint64_t id, const std::string& key, const std::string& range_end,
                                int64_t start_revision) {
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
}

void EtcdClient::EndWatch(uint64_t id, absl::Status status) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  if (it->second.request) CancelControlHttpRequest(it->second.request);
  if (it->second.grpc) it->second.grpc->channel->CloseStream(it->second.grpc);
  OnWatchEnd on_end = std::move(it->second.on_end);
  watches_.erase(it);
  on_end(status);
}

void EtcdClient::CancelWatch(uint64_t id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  if (it->second.request) CancelControlHttpRequest(it->second.request);
  if (it->second.grpc) it->second.grpc->channel->CloseStream(it->second.grpc);
  watches_.erase(it);
}

// --- gRPC ------------------------------------------------------------------------------------

bool EtcdClient::UseGrpc() const {
  if (!options_.grpc) return false;
  // Authentication goes through the gateway: until there is a token, so do the calls.
  if (!options_.username.empty() && token_.empty()) return false;
  // The current endpoint's: a connection to another is left at the next use (Channel).
  return absl::Now() >= json_until_[current_];
}

GrpcChannel::Metadata EtcdClient::Metadata(bool watch) const {
  GrpcChannel::Metadata metadata;
  if (!token_.empty()) metadata.emplace_back("token", token_);
  // A member without a leader ends the watch rather than keep it quiet (etcd's clientv3 asks
  // the same with WithRequireLeader).
  if (watch) metadata.emplace_back("hasleader", "true");
  return metadata;
}

GrpcChannel* EtcdClient::Channel() {
  if (channel_ && channel_endpoint_ != current_) {
    // The gateway's calls moved on from the channel's endpoint (it failed them): so do the
    // streams. The old channel's streams end once it is given up, from the loop.
    LOG_INFO("etcd: keep-alives and watches leave %s for %s",
             options_.endpoints[channel_endpoint_].url, endpoint());
    GrpcChannel* old = channel_;
    channel_ = nullptr;
    if (keepalive_stream_ && keepalive_stream_->channel == old) keepalive_stream_ = nullptr;
    old->Retire(absl::UnavailableError("left for " + endpoint()));
  }
  if (channel_) return channel_;
  size_t endpoint = current_;
  const HttpOrigin& e = options_.endpoints[endpoint];
  GrpcChannelOptions options;
  options.name = e.url;
  options.authority = e.named ? absl::StrFormat("%s:%d", e.host, e.port) : e.address.ToString();
  if (e.tls) {
    options.tls = options_.tls;
    options.server_name = e.host;
    options.tls_session = tls_sessions_[endpoint].get();
  }
  options.connect_timeout = options_.timeout;
  // A host gone (unacknowledged bytes) is found out within two time-outs, before a lease of
  // the default 5 s expires; a slow etcd, whose kernel still acknowledges, is not taken for one.
  options.user_timeout = std::max(absl::Seconds(1), 2 * options_.timeout);
  options.counters = &wire_;
  GrpcChannel* channel = GrpcChannel::Create(context_, std::move(options), this);
  channel_ = channel;
  channel_endpoint_ = endpoint;
  uint64_t generation = ++channel_generation_;
  Address(endpoint, [this, channel, generation](absl::StatusOr<SocketAddress> address) {
    // It went down, was left, or the client was cancelled meanwhile.
    if (generation != channel_generation_ || channel_ != channel) return;
    if (!address.ok()) {
      channel->Fail(address.status());
      return;
    }
    channel->Connect(*address);
  });
  return channel;
}

void EtcdClient::OnGrpcChannelDown(GrpcChannel* channel, const absl::Status& status, bool refused) {
  if (channel != channel_) return;
  channel_ = nullptr;
  keepalive_stream_ = nullptr;  // its end follows
  size_t endpoint = channel_endpoint_;
  if (refused) {
    json_until_[endpoint] = absl::Now() + kJsonFor;
    LOG_WARN("etcd: %s; its JSON gateway for the next %s", status.message(),
             absl::FormatDuration(kJsonFor));
    return;
  }
  LOG_INFO("etcd: %s", status.message());
  AddressFailed(endpoint);
  NextEndpoint(endpoint);
}

void EtcdClient::SendKeepAlive(KeepAliveCall* call) {
  ++call->attempts;
  call->timeout.Arm(context_->Timeouts(options_.timeout));  // per attempt, as for the gateway
  GrpcChannel* channel = Channel();
  if (keepalive_stream_ && keepalive_stream_->channel != channel) keepalive_stream_ = nullptr;
  if (!keepalive_stream_) {
    keepalive_stream_ = channel->OpenStream(kEtcdLeaseKeepAlivePath, Metadata(false), this);
    keepalive_sent_[keepalive_stream_];
  }
  call->stream = keepalive_stream_;
  call->sent = absl::Now();
  keepalive_sent_[keepalive_stream_].push_back(call->id);
  ++keepalives_grpc_;
  channel->Send(keepalive_stream_, EtcdGrpcKeepAliveRequest(call->lease));
}

void EtcdClient::KeepAliveTimedOut(uint64_t id) {
  auto it = keepalives_.find(id);
  if (it == keepalives_.end()) return;
  KeepAliveCall* call = it->second.get();
  const std::string& url = options_.endpoints[channel_endpoint_].url;
  if (channel_ && call->stream && call->stream->channel == channel_ &&
      channel_->last_read() <= call->sent && call->attempts < options_.endpoints.size()) {
    // Not a byte from this member since the call went out: the next endpoint, as the gateway's
    // calls go (the call goes again there when its stream ends).
    channel_->Fail(absl::UnavailableError(
        absl::StrFormat("etcd sent nothing for %s", absl::FormatDuration(options_.timeout))));
    return;
  }
  // A slow etcd is not a lost one: the connection stays. Its answer, if it comes, is dropped.
  FailKeepAlive(id, absl::DeadlineExceededError(
                        absl::StrFormat("etcd did not answer in time: %s: a keep-alive (gRPC), %s",
                                        url, absl::FormatDuration(options_.timeout))));
}

void EtcdClient::FailKeepAlive(uint64_t id, absl::Status status) {
  auto it = keepalives_.find(id);
  if (it == keepalives_.end()) return;
  Done<EtcdLease> done = std::move(it->second->done);
  keepalives_.erase(it);
  done(std::move(status));
}

uint64_t EtcdClient::WatchOf(const GrpcStream* stream) const {
  for (const auto& [id, watch] : watches_) {
    if (watch.grpc == stream) return id;
  }
  return 0;
}

void EtcdClient::OnGrpcMessage(GrpcStream* stream, std::string_view message) {
  if (auto fifo = keepalive_sent_.find(stream); fifo != keepalive_sent_.end()) {
    absl::StatusOr<EtcdLease> lease = ParseEtcdGrpcKeepAliveResponse(message);
    // etcd answers a stream's keep-alives one for one, in order: this answer is the oldest
    // request's, even if that call timed out meanwhile (then the answer is dropped; crediting
    // it to a newer call would date the lease's renewal later than it was).
    uint64_t id = 0;
    if (lease.ok() && !fifo->second.empty()) {
      id = fifo->second.front();
      fifo->second.pop_front();
    }
    auto it = keepalives_.find(id);
    if (lease.ok() && id == 0)
      lease = absl::InternalError("etcd gRPC: a keep-alive answer unasked");
    if (lease.ok() && it != keepalives_.end() && it->second->lease != lease->id) {
      lease = absl::InternalError(
          absl::StrFormat("etcd gRPC: a keep-alive answer for lease %x where %x was asked",
                          lease->id, it->second->lease));
    }
    if (!lease.ok()) {
      // The stream cannot be trusted to pair answers with calls any more: its calls fail (the
      // fleet keeps its lease alive at its next tick) and the next goes on a new stream.
      LOG_WARN("etcd: %s; the keep-alive stream starts again", lease.status().message());
      if (keepalive_stream_ == stream) keepalive_stream_ = nullptr;
      keepalive_sent_.erase(fifo);
      stream->channel->CloseStream(stream);
      std::vector<uint64_t> waiting;
      for (const auto& [call_id, call] : keepalives_) {
        if (call->stream == stream) waiting.push_back(call_id);
      }
      for (uint64_t call_id : waiting) FailKeepAlive(call_id, lease.status());
      return;
    }
    if (it == keepalives_.end()) return;  // it timed out
    Done<EtcdLease> done = std::move(it->second->done);
    keepalives_.erase(it);
    done(*lease);
    return;
  }
  uint64_t id = WatchOf(stream);
  if (id == 0) return;
  absl::StatusOr<EtcdWatchMessage> m = ParseEtcdGrpcWatchResponse(message);
  if (!m.ok()) {
    EndWatch(id, m.status());
    return;
  }
  ++watch_messages_;
  watch_events_ += m->events.size();
  WatchState& watch = watches_.at(id);
  watch.heard = true;
  watch.on_message(*m);
}

void EtcdClient::OnGrpcEnd(GrpcStream* stream, const absl::Status& status) {
  if (stream == keepalive_stream_) keepalive_stream_ = nullptr;
  keepalive_sent_.erase(stream);
  if (uint64_t id = WatchOf(stream); id != 0) {
    WatchState& watch = watches_.at(id);
    watch.grpc = nullptr;
    if (absl::IsUnavailable(status) && !watch.heard && absl::Now() < json_until_[watch.endpoint]) {
      // The endpoint does not speak gRPC: nothing reached etcd, so the same watch through its
      // gateway, unseen by the caller.
      StartWatchJson(id, watch.key, watch.range_end, watch.start_revision);
      return;
    }
    absl::Status ended = status.ok() ? absl::UnavailableError("etcd ended the watch") : status;
    if (absl::IsUnauthenticated(ended)) token_.clear();
    EndWatch(id, ended);
    return;
  }
  // A keep-alive stream: the calls that wait for an answer on it go again on a new stream (the
  // next endpoint's, when the connection went), or through the gateway to authenticate, or
  // fail.
  std::vector<uint64_t> waiting;
  for (const auto& [id, call] : keepalives_) {
    if (call->stream == stream) waiting.push_back(id);
  }
  for (uint64_t id : waiting) {
    auto it = keepalives_.find(id);
    if (it == keepalives_.end()) continue;
    KeepAliveCall* call = it->second.get();
    call->stream = nullptr;
    // Through the gateway (an endpoint without gRPC: nothing reached etcd) with the gateway's
    // own attempts.
    bool again = (status.ok() || absl::IsUnavailable(status)) &&
                 (call->attempts < options_.endpoints.size() || !UseGrpc());
    if (absl::IsUnauthenticated(status) && !options_.username.empty()) {
      token_.clear();  // expired: the gateway authenticates again
      again = true;
    }
    if (again && UseGrpc()) {
      SendKeepAlive(call);
      continue;
    }
    if (again) {
      Done<EtcdLease> done = std::move(call->done);
      int64_t lease = call->lease;
      keepalives_.erase(it);
      KeepAliveJson(lease, std::move(done));
      continue;
    }
    absl::Status failed =
        status.ok() ? absl::UnavailableError("etcd ended the keep-alive stream") : status;
    if (absl::StrContains(failed.message(), "timed out") ||
        absl::StrContains(failed.message(), "too many requests")) {
      failed = absl::DeadlineExceededError(failed.message());
    }
    FailKeepAlive(id, failed);
  }
}

}  // namespace sluice
