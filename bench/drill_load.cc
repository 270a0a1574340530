// sluice_drill_load: the clients of the failover drill (bench/drill.py).
//
// An open-loop load at a fixed rate: requests are scheduled on a clock, not when earlier ones
// return, so a stalled region shows as latency and timeouts instead of as less load. Each
// request is for one member out of many; a member always enters through the same region (as if
// DNS sent it to its nearest edge). A share of the requests are POST "starts", the rest GETs.
// Nothing is retried here: what is counted is what a client would have seen.
//
//   sluice_drill_load --entry us-east-1=127.0.0.1:8081 --entry us-west-2=127.0.0.1:8082 ...
//                     [--rate 15000] [--duration 60] [--members 200000] [--post-percent 20]
//                     [--connections 64] [--timeout 10] [--seed 1]
//                     [--change AT:FACTOR[:ENTRY]]...
//                     [--dns IP:PORT --name NAME --port P [--dns-grace S]]
//
// Member m enters through entry m mod (number of entries), and each entry has a clock of its
// own: its base rate is --rate times its share of the members, and each of its requests is for
// one of its own members, picked at random. --change (repeatable) changes the load on a
// schedule: from AT seconds into the run, the entry named ENTRY (every entry when ENTRY is
// left out) sends FACTOR times its base rate (0.6: 40% less; 5: five times). Factors do not
// compound: for each entry, the change with the latest AT that names it or names no entry is in
// force (on equal AT, the later flag). Nothing is issued after --duration, and nothing is
// waited for past --timeout after that, so a run is bounded in time and in requests (at most
// --duration x --rate x the largest factor).
//
// With --dns the clients find the edge through DNS, as clients on the internet do: one shared
// name, NAME, is resolved (A records) at the DNS server IP:PORT by a stub resolver with a cache
// (bench/drill_resolver.h): an answer is used for its smallest TTL, then asked for again; while
// that query is on its way or after it failed, the old answer is still used until it is
// --dns-grace seconds (default 5) past its TTL. Each --entry still names a region, and its IP
// is that region's home address (its port is not used): whenever a client of the region opens
// a new connection, it connects to P at the home address when the answer holds it (as latency
// or geo routing would send it there), else at one of the answer's addresses at random.
// Keep-alive connections stay where they are until they break or close. A request that needs
// a new connection fails with outcome dns when there is no usable answer or it has no
// addresses; while no answer is usable and a query is on its way, requests wait (and may time
// out).
//
// Output on stdout, CSV lines tagged by their first field, flushed once a second:
//   c,SECOND,ENTRY,METHOD,OUTCOME,SERVED,COUNT   requests that ended in that second
//   l,SECOND,P50_MS,P99_MS,MAX_MS                latency of the successful ones
//   s,SECOND,ISSUED,IN_FLIGHT,QUEUED,CONNECTIONS
//   f,ISSUED,ENTRY,METHOD,OUTCOME,COUNT          the failed ones of those c lines again,
//                                                under the second they were issued in (their
//                                                intended send time)
//   a,SECOND,ENTRY,ADDRESS,OPENED                connections opened (with --dns only)
//   d,LOOKUPS,FAILED                             DNS lookups, and those that got no answer
//                                                (with --dns, once at the end)
// OUTCOME is ok (2xx or 3xx), http_4xx, http_5xx, reset (the connection broke before a whole
// response), timeout, connect (no connection could be made for it), or dns (no address to
// connect to, with --dns); SERVED is the sluice-region response header ("-" when there was
// none). Exit status 0 once every scheduled request is accounted for, 2 on bad arguments.
#include <llhttp.h>
#include <strings.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bench/drill_resolver.h"

namespace {

using sluice_drill::DnsCache;
using sluice_drill::StubResolver;

enum class Outcome { kOk, kHttp4xx, kHttp5xx, kReset, kTimeout, kConnect, kDns };
constexpr const char* kOutcomeNames[] = {"ok",      "http_4xx", "http_5xx", "reset",
                                         "timeout", "connect",  "dns"};

struct Entry {
  std::string name;
  sockaddr_storage address{};
};

// From `at` seconds into the run, the entry `entry` (every entry when empty) sends `factor`
// times its base rate.
struct Change {
  double at = 0;
  double factor = 1;
  std::string entry;
};

struct Options {
  std::vector<Entry> entries;
  std::vector<Change> changes;
  double rate = 1000;
  double duration = 10;
  uint64_t members = 200000;
  double post_share = 0.2;
  size_t connections = 64;
  double timeout = 10;
  uint64_t seed = 1;
  // --dns: the clients resolve `name` at `dns_server` and connect to `port`.
  bool dns = false;
  sockaddr_storage dns_server{};
  std::string name;
  int port = 0;
  double dns_grace = 5;
};

struct Request {
  uint64_t member = 0;
  bool post = false;
  uint64_t scheduled_ns = 0;
};

// One entry's requests over the run: a piecewise constant rate. The schedule says how many
// requests are due by a time, and when the i-th one was due (its intended send time).
class Schedule {
 public:
  // The segments of entry `name`, whose base rate is `base_rate`, under `changes` (applied as
  // the header comment says).
  Schedule(const std::string& name, double base_rate, const std::vector<Change>& changes) {
    std::vector<std::pair<double, double>> steps;  // (from, factor), stable by from
    for (const Change& c : changes) {
      if (c.entry.empty() || c.entry == name) steps.emplace_back(c.at, c.factor);
    }
    std::stable_sort(steps.begin(), steps.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    segments_.push_back({0, base_rate, 0});
    for (const auto& [from, factor] : steps) {
      Segment& last = segments_.back();
      if (from <= last.start) {  // a change at the same time (or at 0) replaces the rate
        last.rate = base_rate * factor;
        continue;
      }
      double due = last.due_before + last.rate * (from - last.start);
      segments_.push_back({from, base_rate * factor, due});
    }
  }

  // How many requests are due in [0, t).
  uint64_t Due(double t) const {
    const Segment& s = At(t);
    return static_cast<uint64_t>(s.due_before + s.rate * (t - s.start));
  }

  // When the i-th request (from 0) is due, in seconds: in the segment whose range of due
  // counts holds i (a segment with no requests has an empty range and is never it).
  double TimeOf(uint64_t i) const {
    double n = static_cast<double>(i);
    size_t k = segments_.size() - 1;
    while (k > 0 && segments_[k].due_before > n) --k;
    const Segment& s = segments_[k];
    return s.rate > 0 ? s.start + (n - s.due_before) / s.rate : s.start;
  }

  uint64_t issued = 0;

 private:
  struct Segment {
    double start;       // seconds into the run
    double rate;        // requests per second from start on
    double due_before;  // requests due in [0, start)
  };

  const Segment& At(double t) const {
    size_t k = segments_.size() - 1;
    while (k > 0 && segments_[k].start > t) --k;
    return segments_[k];
  }

  std::vector<Segment> segments_;  // by start; the first at 0
};

class Drill;

// One keep-alive HTTP/1.1 client connection; one request at a time.
struct Connection {
  Drill* drill = nullptr;
  size_t entry = 0;
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  uv_write_t write{};
  llhttp_t parser{};
  enum class State { kConnecting, kIdle, kBusy, kClosed } state = State::kConnecting;
  Request request;
  std::string bytes;       // the request on the wire; lives until the write completes
  std::string field;       // the header name being read
  bool in_value = false;   // the last callback was a header value
  bool in_region = false;  // ... of sluice-region
  std::string served;
  int status = 0;
  bool complete = false;
  bool keep_alive = true;
  bool released = false;  // its handle's close callback ran: Sweep may free it
  char buffer[16384];
};

uint64_t NowNs() { return uv_hrtime(); }

class Drill {
 public:
  Drill(const Options& options, uv_loop_t* loop)
      : options_(options),
        loop_(loop),
        pending_(options.entries.size()),
        open_(options.entries.size()) {
    size_t n = options.entries.size();
    for (size_t e = 0; e < n; ++e) {
      // Members e, e + n, e + 2n, ... enter through entry e.
      uint64_t members = options.members / n + (e < options.members % n ? 1 : 0);
      members_.push_back(members);
      schedules_.emplace_back(
          options.entries[e].name,
          options.rate * static_cast<double>(members) / static_cast<double>(options.members),
          options.changes);
    }
    llhttp_settings_init(&settings_);
    settings_.on_header_field = &Drill::OnHeaderField;
    settings_.on_header_value = &Drill::OnHeaderValue;
    settings_.on_headers_complete = &Drill::OnHeadersComplete;
    settings_.on_message_complete = &Drill::OnMessageComplete;
    random_ = options.seed * 0x9E3779B97F4A7C15ULL + 1;
  }

  void Start() {
    start_ns_ = NowNs();
    if (options_.dns) {
      resolver_ = std::make_unique<StubResolver>(loop_, options_.dns_server, options_.name,
                                                 static_cast<uint64_t>(options_.dns_grace * 1e9),
                                                 options_.seed);
    }
    uv_timer_init(loop_, &tick_);
    tick_.data = this;
    uv_timer_start(
        &tick_, [](uv_timer_t* t) { static_cast<Drill*>(t->data)->Tick(); }, 1, 1);
    uv_timer_init(loop_, &report_);
    report_.data = this;
    uv_timer_start(
        &report_, [](uv_timer_t* t) { static_cast<Drill*>(t->data)->Report(false); }, 1000, 1000);
  }

  bool accounted() const { return issued_ == ended_; }

 private:
  uint64_t Random() {  // splitmix64
    uint64_t z = (random_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  int Second(uint64_t now) const { return static_cast<int>((now - start_ns_) / 1000000000ULL); }

  void Tick() {
    uint64_t now = NowNs();
    double elapsed = static_cast<double>(now - start_ns_) / 1e9;
    bool issuing = elapsed < options_.duration;
    if (issuing) {
      size_t n = schedules_.size();
      for (size_t e = 0; e < n; ++e) {
        Schedule& schedule = schedules_[e];
        for (uint64_t due = schedule.Due(elapsed); schedule.issued < due; ++schedule.issued) {
          Request r;
          r.member = (Random() % members_[e]) * n + e;
          r.post = static_cast<double>(Random() % 1000000) < options_.post_share * 1e6;
          // The intended time: a late tick does not make the load burstier or its latency
          // smaller.
          r.scheduled_ns =
              start_ns_ + static_cast<uint64_t>(schedule.TimeOf(schedule.issued) * 1e9);
          pending_[e].push_back(r);
          ++issued_;
        }
      }
    }
    uint64_t deadline_ns = static_cast<uint64_t>(options_.timeout * 1e9);
    for (size_t e = 0; e < pending_.size(); ++e) {
      // Requests that waited for a connection past their deadline time out where they are.
      while (!pending_[e].empty() && now - pending_[e].front().scheduled_ns > deadline_ns) {
        Count(now, e, pending_[e].front(), Outcome::kTimeout, "-");
        pending_[e].pop_front();
      }
      Dispatch(e);
    }
    for (auto& per_entry : open_) {
      for (Connection* c : per_entry) {
        if (c->state == Connection::State::kBusy && now - c->request.scheduled_ns > deadline_ns) {
          Count(now, c->entry, c->request, Outcome::kTimeout, "-");
          Close(c);
        }
      }
    }
    Sweep();
    if (!issuing && accounted()) Finish();
  }

  // Sends queued requests on idle connections, opening more (up to the cap) when none is idle.
  void Dispatch(size_t e) {
    std::deque<Request>& queue = pending_[e];
    size_t connecting = 0;
    for (Connection* c : open_[e]) {
      if (queue.empty()) return;
      if (c->state == Connection::State::kIdle) {
        Send(c, queue.front());
        queue.pop_front();
      } else if (c->state == Connection::State::kConnecting) {
        ++connecting;
      }
    }
    while (queue.size() > connecting && open_[e].size() < options_.connections) {
      sockaddr_storage to;
      if (!Target(e, connecting, &to)) return;
      Open(e, to);
      ++connecting;
    }
  }

  // Where entry e's next connection goes: its --entry address, or with --dns the home address
  // or another one from the answer (the header comment says which). False when no connection
  // is to be opened now: the answer is awaited, or there is no address, and then the queued
  // requests that a new connection would take (beyond `connecting`) fail.
  bool Target(size_t e, size_t connecting, sockaddr_storage* to) {
    if (!resolver_) {
      *to = options_.entries[e].address;
      return true;
    }
    uint64_t now = NowNs();
    DnsCache::State state = resolver_->Resolve(now);
    if (state == DnsCache::State::kWaiting) return false;
    const std::vector<in_addr>& addresses = resolver_->addresses();
    if (state == DnsCache::State::kFailed || addresses.empty()) {
      std::deque<Request>& queue = pending_[e];
      while (queue.size() > connecting) {
        Count(now, e, queue.front(), Outcome::kDns, "-");
        queue.pop_front();
      }
      return false;
    }
    const sockaddr_storage& home = options_.entries[e].address;
    const in_addr* pick = nullptr;
    if (home.ss_family == AF_INET) {
      in_addr home_ip = reinterpret_cast<const sockaddr_in*>(&home)->sin_addr;
      for (const in_addr& a : addresses) {
        if (a.s_addr == home_ip.s_addr) pick = &a;
      }
    }
    if (pick == nullptr) pick = &addresses[Random() % addresses.size()];
    *to = sockaddr_storage{};
    auto* in = reinterpret_cast<sockaddr_in*>(to);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(options_.port));
    in->sin_addr = *pick;
    char name[INET_ADDRSTRLEN] = "?";
    uv_ip4_name(in, name, sizeof(name));
    ++opened_[{Second(now), e, name}];
    return true;
  }

  void Open(size_t e, const sockaddr_storage& to) {
    auto* c = new Connection;
    c->drill = this;
    c->entry = e;
    uv_tcp_init(loop_, &c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    c->tcp.data = c;
    c->connect.data = c;
    llhttp_init(&c->parser, HTTP_RESPONSE, &settings_);
    c->parser.data = c;
    open_[e].push_back(c);
    int rc = uv_tcp_connect(&c->connect, &c->tcp, reinterpret_cast<const sockaddr*>(&to),
                            &Drill::OnConnect);
    if (rc != 0) ConnectFailed(c);
  }

  static void OnConnect(uv_connect_t* request, int status) {
    auto* c = static_cast<Connection*>(request->data);
    if (c->state == Connection::State::kClosed) return;
    Drill* self = c->drill;
    if (status != 0) {
      self->ConnectFailed(c);
      return;
    }
    c->state = Connection::State::kIdle;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* conn = static_cast<Connection*>(h->data);
          *buf = uv_buf_init(conn->buffer, sizeof(conn->buffer));
        },
        &Drill::OnRead);
    self->Dispatch(c->entry);
  }

  // A connection that could not be made fails the oldest request waiting for one, so a region
  // that refuses connections shows at once rather than as timeouts later.
  void ConnectFailed(Connection* c) {
    std::deque<Request>& queue = pending_[c->entry];
    if (!queue.empty()) {
      Count(NowNs(), c->entry, queue.front(), Outcome::kConnect, "-");
      queue.pop_front();
    }
    Close(c);
  }

  void Send(Connection* c, const Request& r) {
    c->state = Connection::State::kBusy;
    c->request = r;
    c->served.clear();
    c->field.clear();
    c->in_value = false;
    c->in_region = false;
    c->status = 0;
    c->complete = false;
    char head[256];
    int n;
    if (r.post) {
      char body[64];
      int body_length = snprintf(body, sizeof(body), "{\"title\":%llu}",
                                 static_cast<unsigned long long>(r.member % 5000));
      n = snprintf(head, sizeof(head),
                   "POST /start HTTP/1.1\r\nHost: drill\r\nx-member-id: m%llu\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                   static_cast<unsigned long long>(r.member), body_length, body);
    } else {
      n = snprintf(head, sizeof(head),
                   "GET /catalog/%llu HTTP/1.1\r\nHost: drill\r\nx-member-id: m%llu\r\n\r\n",
                   static_cast<unsigned long long>(r.member % 5000),
                   static_cast<unsigned long long>(r.member));
    }
    c->bytes.assign(head, static_cast<size_t>(n));
    uv_buf_t buf = uv_buf_init(c->bytes.data(), static_cast<unsigned>(c->bytes.size()));
    c->write.data = c;
    int rc = uv_write(&c->write, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1,
                      [](uv_write_t* w, int status) {
                        auto* conn = static_cast<Connection*>(w->data);
                        if (status != 0 && conn->state == Connection::State::kBusy) {
                          conn->drill->Broken(conn);
                        }
                      });
    if (rc != 0) Broken(c);
  }

  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<Connection*>(stream->data);
    Drill* self = c->drill;
    if (c->state == Connection::State::kClosed) return;
    if (nread < 0) {
      if (c->state == Connection::State::kBusy) {
        self->Broken(c);
      } else {
        self->Close(c);
      }
      return;
    }
    if (nread == 0) return;
    if (c->state != Connection::State::kBusy) {  // bytes nobody asked for
      self->Close(c);
      return;
    }
    llhttp_errno_t error = llhttp_execute(&c->parser, buf->base, static_cast<size_t>(nread));
    if (error != HPE_OK) {
      self->Broken(c);
      return;
    }
    if (!c->complete) return;
    uint64_t now = NowNs();
    Outcome outcome = c->status < 400   ? Outcome::kOk
                      : c->status < 500 ? Outcome::kHttp4xx
                                        : Outcome::kHttp5xx;
    self->Count(now, c->entry, c->request, outcome, c->served.empty() ? "-" : c->served);
    if (outcome == Outcome::kOk) {
      self->latencies_ms_[self->Second(now)].push_back(
          static_cast<double>(now - c->request.scheduled_ns) / 1e6);
    }
    if (!c->keep_alive) {
      self->Close(c);
      return;
    }
    c->state = Connection::State::kIdle;
    self->Dispatch(c->entry);
  }

  // The connection broke with a request on it: the request failed as a client sees it.
  void Broken(Connection* c) {
    Count(NowNs(), c->entry, c->request, Outcome::kReset, c->served.empty() ? "-" : c->served);
    Close(c);
  }

  // A header name may arrive in pieces, and so may its value; a name after a value is new.
  static int OnHeaderField(llhttp_t* p, const char* at, size_t length) {
    auto* c = static_cast<Connection*>(p->data);
    if (c->in_value) {
      c->field.clear();
      c->in_value = false;
    }
    if (c->field.size() < 64) c->field.append(at, length);
    return 0;
  }

  static int OnHeaderValue(llhttp_t* p, const char* at, size_t length) {
    auto* c = static_cast<Connection*>(p->data);
    if (!c->in_value) {
      c->in_value = true;
      c->in_region =
          c->field.size() == 13 && strncasecmp(c->field.data(), "sluice-region", 13) == 0;
    }
    if (c->in_region && c->served.size() < 64) c->served.append(at, length);
    return 0;
  }

  static int OnHeadersComplete(llhttp_t* p) {
    auto* c = static_cast<Connection*>(p->data);
    c->status = p->status_code;
    c->field.clear();
    c->in_value = false;
    c->in_region = false;
    return 0;
  }

  static int OnMessageComplete(llhttp_t* p) {
    auto* c = static_cast<Connection*>(p->data);
    c->complete = true;
    c->keep_alive = llhttp_should_keep_alive(p) != 0;
    return 0;
  }

  void Close(Connection* c) {
    if (c->state == Connection::State::kClosed) return;
    c->state = Connection::State::kClosed;
    // Freed by Sweep, never here: the lists still hold it until then, and a freed block reused
    // by a new connection would be in them twice.
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
             [](uv_handle_t* h) { static_cast<Connection*>(h->data)->released = true; });
  }

  // Forgets closed connections (their memory goes in the close callback).
  void Sweep() {
    for (auto& per_entry : open_) {
      per_entry.erase(std::remove_if(per_entry.begin(), per_entry.end(),
                                     [](Connection* c) {
                                       if (!c->released) return false;
                                       delete c;
                                       return true;
                                     }),
                      per_entry.end());
    }
  }

  void Count(uint64_t now, size_t entry, const Request& r, Outcome outcome,
             const std::string& served) {
    ++counts_[{Second(now), entry, r.post, static_cast<int>(outcome), served}];
    if (outcome != Outcome::kOk) ++failed_[{Second(r.scheduled_ns), entry, r.post, outcome}];
    ++ended_;
  }

  // Everything that ended since the last report, each under its own second; the state line is
  // for the second that just ended.
  void Report(bool final) {
    int second = Second(NowNs()) - (final ? 0 : 1);
    for (const auto& [key, count] : counts_) {
      const auto& [s, entry, post, outcome, served] = key;
      printf("c,%d,%s,%s,%s,%s,%llu\n", s, options_.entries[entry].name.c_str(),
             post ? "POST" : "GET", kOutcomeNames[outcome], served.c_str(),
             static_cast<unsigned long long>(count));
    }
    counts_.clear();
    for (const auto& [key, count] : failed_) {
      const auto& [s, entry, post, outcome] = key;
      printf("f,%d,%s,%s,%s,%llu\n", s, options_.entries[entry].name.c_str(), post ? "POST" : "GET",
             kOutcomeNames[static_cast<int>(outcome)], static_cast<unsigned long long>(count));
    }
    failed_.clear();
    for (auto& [s, values] : latencies_ms_) {
      std::sort(values.begin(), values.end());
      auto at = [&values](double q) {
        return values[std::min(values.size() - 1, static_cast<size_t>(q * values.size()))];
      };
      printf("l,%d,%.3f,%.3f,%.3f\n", s, at(0.5), at(0.99), values.back());
    }
    latencies_ms_.clear();
    for (const auto& [key, count] : opened_) {
      const auto& [s, entry, address] = key;
      printf("a,%d,%s,%s,%llu\n", s, options_.entries[entry].name.c_str(), address.c_str(),
             static_cast<unsigned long long>(count));
    }
    opened_.clear();
    size_t queued = 0, connections = 0;
    for (const auto& q : pending_) queued += q.size();
    for (const auto& per_entry : open_) connections += per_entry.size();
    printf("s,%d,%llu,%llu,%zu,%zu\n", second, static_cast<unsigned long long>(issued_),
           static_cast<unsigned long long>(issued_ - ended_ - queued), queued, connections);
    fflush(stdout);
  }

  void Finish() {
    Report(true);
    if (resolver_) {
      printf("d,%llu,%llu\n", static_cast<unsigned long long>(resolver_->lookups()),
             static_cast<unsigned long long>(resolver_->failures()));
      fflush(stdout);
      if (resolver_->failures() > 0) {
        fprintf(stderr, "sluice_drill_load: %llu DNS lookups failed, the last: %s\n",
                static_cast<unsigned long long>(resolver_->failures()),
                resolver_->last_error().c_str());
      }
      resolver_->Close();
    }
    uv_timer_stop(&tick_);
    uv_timer_stop(&report_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&report_), nullptr);
    for (auto& per_entry : open_) {
      for (Connection* c : per_entry) Close(c);  // freed with the process
    }
  }

  Options options_;
  uv_loop_t* loop_;
  llhttp_settings_t settings_{};
  uv_timer_t tick_{};
  uv_timer_t report_{};
  uint64_t start_ns_ = 0;
  uint64_t random_ = 0;
  uint64_t issued_ = 0;
  uint64_t ended_ = 0;
  std::vector<uint64_t> members_;    // by entry: how many members enter through it
  std::vector<Schedule> schedules_;  // by entry
  std::vector<std::deque<Request>> pending_;
  std::vector<std::vector<Connection*>> open_;
  std::map<std::tuple<int, size_t, bool, int, std::string>, uint64_t> counts_;
  std::map<std::tuple<int, size_t, bool, Outcome>, uint64_t> failed_;  // by the issued second
  std::map<int, std::vector<double>> latencies_ms_;                  // by the second they ended in
  std::map<std::tuple<int, size_t, std::string>, uint64_t> opened_;  // with --dns
  std::unique_ptr<StubResolver> resolver_;                           // with --dns
};

[[noreturn]] void Usage(const char* error) {
  fprintf(stderr,
          "sluice_drill_load: %s\nusage: sluice_drill_load --entry NAME=IP:PORT [--entry ...] "
          "[--rate N] [--duration S] [--members N] [--post-percent P] [--connections N] "
          "[--timeout S] [--seed N] [--change AT:FACTOR[:ENTRY]]... "
          "[--dns IP:PORT --name NAME --port P [--dns-grace S]]\n",
          error);
  exit(2);
}

double Number(const char* flag, const char* text, double min, double max) {
  char* end = nullptr;
  errno = 0;
  double value = strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
    std::string message = std::string(flag) + ": not a number in range: " + text;
    Usage(message.c_str());
  }
  return value;
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) Usage(("missing value for " + flag).c_str());
    const char* value = argv[++i];
    if (flag == "--entry") {
      const char* eq = strchr(value, '=');
      const char* colon = eq ? strrchr(eq, ':') : nullptr;
      if (!eq || !colon || eq == value) Usage("--entry wants NAME=IP:PORT");
      Entry e;
      e.name.assign(value, static_cast<size_t>(eq - value));
      std::string ip(eq + 1, static_cast<size_t>(colon - eq - 1));
      int port = static_cast<int>(Number("--entry port", colon + 1, 1, 65535));
      if (uv_ip4_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in*>(&e.address)) != 0 &&
          uv_ip6_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(&e.address)) != 0) {
        Usage(("--entry: not an IP address: " + ip).c_str());
      }
      o.entries.push_back(e);
    } else if (flag == "--rate") {
      o.rate = Number("--rate", value, 1, 1e7);
    } else if (flag == "--duration") {
      o.duration = Number("--duration", value, 0.1, 86400);
    } else if (flag == "--members") {
      o.members = static_cast<uint64_t>(Number("--members", value, 1, 1e12));
    } else if (flag == "--post-percent") {
      o.post_share = Number("--post-percent", value, 0, 100) / 100;
    } else if (flag == "--connections") {
      o.connections = static_cast<size_t>(Number("--connections", value, 1, 100000));
    } else if (flag == "--timeout") {
      o.timeout = Number("--timeout", value, 0.01, 3600);
    } else if (flag == "--seed") {
      o.seed = static_cast<uint64_t>(Number("--seed", value, 0, 1e18));
    } else if (flag == "--dns") {
      const char* colon = strrchr(value, ':');
      if (!colon) Usage("--dns wants IP:PORT");
      std::string ip(value, static_cast<size_t>(colon - value));
      if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
      int port = static_cast<int>(Number("--dns port", colon + 1, 1, 65535));
      if (uv_ip4_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in*>(&o.dns_server)) != 0 &&
          uv_ip6_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(&o.dns_server)) != 0) {
        Usage(("--dns: not an IP address: " + ip).c_str());
      }
      o.dns = true;
    } else if (flag == "--name") {
      o.name = value;
      if (!StubResolver::ValidName(o.name)) Usage(("--name: not a domain name: " + o.name).c_str());
    } else if (flag == "--port") {
      o.port = static_cast<int>(Number("--port", value, 1, 65535));
    } else if (flag == "--dns-grace") {
      o.dns_grace = Number("--dns-grace", value, 0, 3600);
    } else if (flag == "--change") {
      const char* colon = strchr(value, ':');
      if (!colon) Usage("--change wants AT:FACTOR[:ENTRY]");
      std::string at(value, static_cast<size_t>(colon - value));
      std::string rest(colon + 1);
      Change c;
      size_t second = rest.find(':');
      if (second != std::string::npos) {
        c.entry = rest.substr(second + 1);
        rest.resize(second);
        if (c.entry.empty()) Usage("--change: empty ENTRY");
      }
      c.at = Number("--change AT", at.c_str(), 0, 86400);
      c.factor = Number("--change FACTOR", rest.c_str(), 0, 1000);
      o.changes.push_back(c);
    } else {
      Usage(("unknown flag " + flag).c_str());
    }
  }
  if (o.entries.empty()) Usage("at least one --entry");
  if (o.members < o.entries.size()) Usage("--members: fewer members than entries");
  if (o.dns && (o.name.empty() || o.port == 0)) Usage("--dns wants --name and --port");
  if (!o.dns && (!o.name.empty() || o.port != 0)) Usage("--name and --port go with --dns");
  for (const Change& c : o.changes) {
    if (c.entry.empty()) continue;
    bool known = std::any_of(o.entries.begin(), o.entries.end(),
                             [&c](const Entry& e) { return e.name == c.entry; });
    if (!known) Usage(("--change: no --entry named " + c.entry).c_str());
  }
  for (const Change& c : o.changes) {
    if (o.rate * c.factor > 1e7) Usage("--change: more than 10,000,000 requests/s");
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = Parse(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  Drill drill(options, &loop);
  drill.Start();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return drill.accounted() ? 0 : 1;
}
