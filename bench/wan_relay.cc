// sluice_wan_relay: one emulated WAN path between two TCP endpoints, for benches on loopback
// (the kernel here has no netem qdisc). bench/wan.py puts it on the tunnel between two regions.
//
//   sluice_wan_relay --listen HOST:PORT --to HOST:PORT [--delay-ms D] [--bandwidth-mbps B]
//                    [--loss-pct P] [--window BYTES] [--seed S]
//
// Every accepted connection is relayed to a new connection to --to. The path is modelled per
// direction ("up": accepted side to --to, "down": back), with time in CLOCK_MONOTONIC ns:
//
// - Delay: bytes read at t arrive (are written to the other side) at t + D ms. Deliveries are
//   driven by one timerfd with absolute deadlines (libuv timers only have milliseconds).
// - Bandwidth: each direction is one link of B Mbit/s shared by every connection; bytes are
//   serialized one after another: departure = max(now, link free at) + len * 8 / B, arrival =
//   departure + D.
// - Window: a connection's direction keeps at most --window bytes in flight (read from the
//   sender, not yet acknowledged); a byte is acknowledged D after it was written to the
//   receiver, one RTT after it left the sender, like a TCP window across the path. When it is
//   full, reading from the sender stops until acknowledgements make room: a connection never
//   buffers more than its window per direction (plus the relay's one read buffer).
// - Loss: for every 1448-byte segment forwarded, with probability P/100 a loss event: that
//   read's bytes arrive one RTT late (a retransmission; later bytes wait behind them, as in
//   TCP). Each direction has a congestion window too, as TCP has: it starts at 10 segments and
//   doubles every RTT (slow start, once per connection: Linux with
//   net.ipv4.tcp_slow_start_after_idle=0) up to --window; a loss cuts it to 0.7x
//   (CUBIC's beta; floor 10 segments; once per recovery: losses among bytes read before the
//   cut's retransmission is acknowledged do not cut again), after which it grows by
//   1448 * 1448 / cwnd per acknowledged segment (Reno's one segment per RTT). With P = 0 the
//   window reaches --window after slow start and stays there.
// - Handshake: the kernel completes the client's connect at once, so a new connection's first
//   bytes up arrive no earlier than 3 D after the accept (SYN, SYN-ACK, data), and down no
//   earlier than 4 D.
// - EOF is delivered in order after the bytes before it (a shutdown of the other side); a read
//   error resets the other side; a failed connect to --to resets the accepted connection.
//
// Signals: SIGUSR1 resets every open connection; SIGUSR2 toggles a stall (nothing is delivered
// or acknowledged while stalled; windows fill and reading stops); SIGTERM, SIGINT close
// everything and exit 0 after one line: "wan_relay: connections=N bytes_up=N bytes_down=N
// loss_events=N resets=N" (bytes written to the other side). Bad arguments: exit 2.
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

constexpr int64_t kSegment = 1448;
constexpr size_t kReadBufferSize = 65536;
constexpr int64_t kNsPerMs = 1000000;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

struct Options {
  sockaddr_storage listen{};
  sockaddr_storage to{};
  int64_t delay_ns = 0;
  double bandwidth_mbps = 0;
  double loss = 0;  // a probability, 0..1
  int64_t window = 0;
  uint64_t seed = 1;
};

struct Chunk {
  std::string bytes;  // empty: the EOF
  int64_t arrive_ns;
};

struct Ack {
  int64_t bytes;
  int64_t at_ns;
};

struct Link {
  int64_t free_at_ns = 0;
  uint64_t delivered = 0;
};

struct Connection;

struct Direction {
  Connection* conn = nullptr;
  int index = 0;  // 0 up, 1 down
  uv_tcp_t* from = nullptr;
  uv_tcp_t* to = nullptr;
  Link* link = nullptr;
  std::deque<Chunk> transit;  // read, not yet written; arrival times never decrease
  std::deque<Ack> unacked;    // written, acknowledgement on its way back
  int64_t in_flight = 0;
  double cwnd = 0;
  double ssthresh = 0;
  int64_t floor_ns = 0;
  int64_t last_arrival_ns = 0;
  int64_t recovery_until_ns = 0;
  int64_t segment_carry = 0;
  bool reading = false;
  bool eof_read = false;
  uv_shutdown_t shutdown{};
};

class Relay;

struct Connection {
  Relay* relay = nullptr;
  uint64_t id = 0;
  uv_tcp_t client{};
  uv_tcp_t server{};
  uv_connect_t connect{};
  Direction dirs[2];
  int open_handles = 2;
  int shutdowns_done = 0;
  bool closing = false;
};

struct Write {
  uv_write_t req{};
  Direction* dir = nullptr;
  std::vector<std::string> pieces;
  int64_t bytes = 0;
};

struct Event {
  int64_t at_ns;
  uint64_t conn_id;
  int dir;
  bool operator>(const Event& other) const { return at_ns > other.at_ns; }
};

class Relay {
 public:
  Relay(uv_loop_t* loop, const Options& options);
  ~Relay();
  int Start();
  void PrintTotals() const;

  void OnAccept(int status);
  void OnConnected(Connection* conn, int status);
  void OnRead(Connection* conn, uv_stream_t* stream, ssize_t nread);
  void OnWritten(Write* write, int status);
  void OnShutdown(Direction* dir, int status);
  void OnClosed(Connection* conn);
  void OnTimer();
  void OnSignal(int signum);
  uv_buf_t ReadBuffer(Connection* conn, uv_handle_t* handle);

 private:
  void PrintListening();
  Direction& DirectionFrom(Connection* conn, uv_handle_t* handle);
  int64_t Room(const Direction& d) const;
  void Enqueue(Direction& d, const char* data, size_t len, int64_t now);
  bool LostSegments(Direction& d, size_t len);
  void Service(Direction& d, int64_t now);
  void Acknowledge(Direction& d, int64_t now);
  void Deliver(Direction& d, int64_t now);
  void UpdateReading(Direction& d);
  void Schedule(int64_t at_ns, const Direction& d);
  void Arm();
  void Close(Connection* conn, bool reset_client, bool reset_server);
  void CloseAll(bool reset);
  void Exit();

  uv_loop_t* loop_;
  Options options_;
  uv_tcp_t listener_{};
  int timer_fd_ = -1;
  uv_poll_t timer_poll_{};
  uv_signal_t signals_[4]{};
  Link links_[2];
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  int64_t armed_at_ns_ = 0;  // 0: disarmed
  std::mt19937_64 random_;
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
  char read_buffer_[kReadBufferSize];
  uint64_t next_id_ = 1;
  bool stalled_ = false;
  bool exiting_ = false;
  uint64_t accepted_ = 0, loss_events_ = 0, resets_ = 0;
};

// libuv callbacks: trampolines to the relay's members.
void OnAcceptCb(uv_stream_t* listener, int status) {
  static_cast<Relay*>(listener->data)->OnAccept(status);
}
void OnConnectCb(uv_connect_t* req, int status) {
  auto* conn = static_cast<Connection*>(req->data);
  conn->relay->OnConnected(conn, status);
}
void OnAllocCb(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* conn = static_cast<Connection*>(handle->data);
  *buf = conn->relay->ReadBuffer(conn, handle);
}
void OnReadCb(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  auto* conn = static_cast<Connection*>(stream->data);
  conn->relay->OnRead(conn, stream, nread);
}
void OnWriteCb(uv_write_t* req, int status) {
  auto* write = static_cast<Write*>(req->data);
  write->dir->conn->relay->OnWritten(write, status);
}
void OnShutdownCb(uv_shutdown_t* req, int status) {
  auto* dir = static_cast<Direction*>(req->data);
  dir->conn->relay->OnShutdown(dir, status);
}
void OnCloseCb(uv_handle_t* handle) {
  auto* conn = static_cast<Connection*>(handle->data);
  conn->relay->OnClosed(conn);
}
void OnTimerCb(uv_poll_t* poll, int, int) { static_cast<Relay*>(poll->data)->OnTimer(); }
void OnSignalCb(uv_signal_t* handle, int signum) {
  static_cast<Relay*>(handle->data)->OnSignal(signum);
}
void OnHandleClosedCb(uv_handle_t*) {}

Relay::Relay(uv_loop_t* loop, const Options& options)
    : loop_(loop), options_(options), random_(options.seed) {}

Relay::~Relay() {
  if (timer_fd_ >= 0) close(timer_fd_);
}

int Relay::Start() {
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) return -errno;
  timer_poll_.data = this;
  int rc = uv_poll_init(loop_, &timer_poll_, timer_fd_);
  if (rc == 0) rc = uv_poll_start(&timer_poll_, UV_READABLE, OnTimerCb);
  const int signums[4] = {SIGUSR1, SIGUSR2, SIGTERM, SIGINT};
  for (int i = 0; rc == 0 && i < 4; ++i) {
    uv_signal_init(loop_, &signals_[i]);
    signals_[i].data = this;
    rc = uv_signal_start(&signals_[i], OnSignalCb, signums[i]);
  }
  if (rc == 0) rc = uv_tcp_init(loop_, &listener_);
  listener_.data = this;
  if (rc == 0) rc = uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&options_.listen), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 1024, OnAcceptCb);
  if (rc == 0) PrintListening();
  return rc;
}

// The one line a caller waits for, with the port the OS picked for port 0.
void Relay::PrintListening() {
  sockaddr_storage bound{};
  int len = sizeof(bound);
  uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
  char host[64] = "";
  if (bound.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&bound);
    uv_ip6_name(in6, host, sizeof(host));
    std::printf("listening [%s]:%d\n", host, ntohs(in6->sin6_port));
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&bound);
    uv_ip4_name(in, host, sizeof(host));
    std::printf("listening %s:%d\n", host, ntohs(in->sin_port));
  }
  std::fflush(stdout);
}

void Relay::PrintTotals() const {
  std::printf("wan_relay: connections=%" PRIu64 " bytes_up=%" PRIu64 " bytes_down=%" PRIu64
              " loss_events=%" PRIu64 " resets=%" PRIu64 "\n",
              accepted_, links_[0].delivered, links_[1].delivered, loss_events_, resets_);
  std::fflush(stdout);
}

void Relay::OnAccept(int status) {
  if (status < 0) return;
  auto owned = std::make_unique<Connection>();
  Connection* conn = owned.get();
  conn->relay = this;
  conn->id = next_id_++;
  uv_tcp_init(loop_, &conn->client);
  uv_tcp_init(loop_, &conn->server);
  conn->client.data = conn->server.data = conn->connect.data = conn;
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_),
                reinterpret_cast<uv_stream_t*>(&conn->client)) != 0) {
    connections_.emplace(conn->id, std::move(owned));
    Close(conn, false, false);
    return;
  }
  ++accepted_;
  uv_tcp_nodelay(&conn->client, 1);
  uv_tcp_nodelay(&conn->server, 1);
  const int64_t now = NowNs();
  for (int i = 0; i < 2; ++i) {
    Direction& d = conn->dirs[i];
    d.conn = conn;
    d.index = i;
    d.from = i == 0 ? &conn->client : &conn->server;
    d.to = i == 0 ? &conn->server : &conn->client;
    d.link = &links_[i];
    d.ssthresh = static_cast<double>(options_.window);
    d.cwnd = std::min(10.0 * kSegment, d.ssthresh);
    d.floor_ns = now + (i == 0 ? 3 : 4) * options_.delay_ns;
    d.shutdown.data = &d;
  }
  connections_.emplace(conn->id, std::move(owned));
  if (uv_tcp_connect(&conn->connect, &conn->server, reinterpret_cast<sockaddr*>(&options_.to),
                     OnConnectCb) != 0) {
    ++resets_;
    Close(conn, true, false);
  }
}

void Relay::OnConnected(Connection* conn, int status) {
  if (conn->closing) return;
  if (status < 0) {
    ++resets_;
    Close(conn, true, false);
    return;
  }
  UpdateReading(conn->dirs[0]);
  UpdateReading(conn->dirs[1]);
}

Direction& Relay::DirectionFrom(Connection* conn, uv_handle_t* handle) {
  return conn->dirs[handle == reinterpret_cast<uv_handle_t*>(&conn->client) ? 0 : 1];
}

int64_t Relay::Room(const Direction& d) const {
  const int64_t cap = std::min(options_.window, static_cast<int64_t>(d.cwnd));
  return cap - d.in_flight;
}

// Reads are never larger than the window's room, so the window is exact.
uv_buf_t Relay::ReadBuffer(Connection* conn, uv_handle_t* handle) {
  const int64_t room = Room(DirectionFrom(conn, handle));
  const size_t size = static_cast<size_t>(std::clamp<int64_t>(room, 1, kReadBufferSize));
  return uv_buf_init(read_buffer_, static_cast<unsigned>(size));
}

void Relay::OnRead(Connection* conn, uv_stream_t* stream, ssize_t nread) {
  if (conn->closing || nread == 0) return;
  Direction& d = DirectionFrom(conn, reinterpret_cast<uv_handle_t*>(stream));
  if (nread == UV_EOF) {
    d.eof_read = true;
    UpdateReading(d);
    Enqueue(d, nullptr, 0, NowNs());
  } else if (nread < 0) {
    // The side read from broke (a reset, mostly): the other side is reset too.
    ++resets_;
    Close(conn, d.index == 1, d.index == 0);
  } else {
    Enqueue(d, read_buffer_, static_cast<size_t>(nread), NowNs());
    UpdateReading(d);
  }
}

void Relay::Enqueue(Direction& d, const char* data, size_t len, int64_t now) {
  int64_t departure = now;
  if (len > 0 && options_.bandwidth_mbps > 0) {
    departure = std::max(now, d.link->free_at_ns) +
                static_cast<int64_t>(static_cast<double>(len) * 8000.0 / options_.bandwidth_mbps);
    d.link->free_at_ns = departure;
  }
  int64_t arrival = std::max(departure + options_.delay_ns, d.floor_ns);
  const bool lost = len > 0 && LostSegments(d, len);
  if (lost) arrival += 2 * options_.delay_ns;      // the retransmission, one RTT later
  arrival = std::max(arrival, d.last_arrival_ns);  // head-of-line: nothing overtakes
  if (lost && now >= d.recovery_until_ns) {
    d.cwnd = d.ssthresh = std::max(0.7 * d.cwnd, 10.0 * kSegment);
    d.recovery_until_ns = arrival + options_.delay_ns;  // when the retransmission is acked
  }
  d.last_arrival_ns = arrival;
  d.in_flight += static_cast<int64_t>(len);
  d.transit.push_back(Chunk{std::string(data ? data : "", len), arrival});
  Schedule(arrival, d);
}

// True if any of the segments completed by these bytes is lost (each counted as an event).
bool Relay::LostSegments(Direction& d, size_t len) {
  if (options_.loss <= 0) return false;
  bool lost = false;
  d.segment_carry += static_cast<int64_t>(len);
  for (; d.segment_carry >= kSegment; d.segment_carry -= kSegment) {
    if (uniform_(random_) < options_.loss) {
      ++loss_events_;
      lost = true;
    }
  }
  return lost;
}

void Relay::UpdateReading(Direction& d) {
  const bool want = !d.conn->closing && !d.eof_read && Room(d) > 0;
  if (want == d.reading) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(d.from);
  d.reading = want && uv_read_start(stream, OnAllocCb, OnReadCb) == 0;
  if (!want) uv_read_stop(stream);
}

void Relay::Service(Direction& d, int64_t now) {
  if (stalled_ || d.conn->closing) return;
  Acknowledge(d, now);
  Deliver(d, now);
}

void Relay::Acknowledge(Direction& d, int64_t now) {
  bool acked = false;
  while (!d.unacked.empty() && d.unacked.front().at_ns <= now) {
    const int64_t bytes = d.unacked.front().bytes;
    d.unacked.pop_front();
    d.in_flight -= bytes;
    const double growth = d.cwnd < d.ssthresh ? static_cast<double>(bytes)
                                              : static_cast<double>(kSegment * bytes) / d.cwnd;
    d.cwnd = std::min(static_cast<double>(options_.window), d.cwnd + growth);
    acked = true;
  }
  if (acked) UpdateReading(d);
}

void Relay::Deliver(Direction& d, int64_t now) {
  auto write = std::make_unique<Write>();
  write->dir = &d;
  write->req.data = write.get();
  bool eof = false;
  while (!d.transit.empty() && d.transit.front().arrive_ns <= now && !eof) {
    eof = d.transit.front().bytes.empty();
    write->bytes += static_cast<int64_t>(d.transit.front().bytes.size());
    if (!eof) write->pieces.push_back(std::move(d.transit.front().bytes));
    d.transit.pop_front();
  }
  auto* to = reinterpret_cast<uv_stream_t*>(d.to);
  if (!write->pieces.empty()) {
    std::vector<uv_buf_t> bufs;
    for (std::string& piece : write->pieces) {
      bufs.push_back(uv_buf_init(piece.data(), static_cast<unsigned>(piece.size())));
    }
    if (uv_write(&write->req, to, bufs.data(), static_cast<unsigned>(bufs.size()), OnWriteCb) !=
        0) {
      ++resets_;
      Close(d.conn, d.index == 1, d.index == 0);
      return;
    }
    write.release();  // owned by the request until OnWritten
  }
  if (eof && uv_shutdown(&d.shutdown, to, OnShutdownCb) != 0) Close(d.conn, false, false);
}

void Relay::OnWritten(Write* write, int status) {
  std::unique_ptr<Write> owned(write);
  Direction& d = *write->dir;
  if (status < 0) {
    // The receiving side broke: reset the side that sent to it.
    if (status != UV_ECANCELED && !d.conn->closing) ++resets_;
    Close(d.conn, d.index == 0, d.index == 1);
    return;
  }
  d.link->delivered += static_cast<uint64_t>(write->bytes);
  const int64_t at = NowNs() + options_.delay_ns;
  d.unacked.push_back(Ack{write->bytes, at});
  Schedule(at, d);
}

void Relay::OnShutdown(Direction* dir, int status) {
  Connection* conn = dir->conn;
  if (status < 0) {
    Close(conn, false, false);
  } else if (++conn->shutdowns_done == 2) {
    Close(conn, false, false);  // both directions ended in order
  }
}

void Relay::Close(Connection* conn, bool reset_client, bool reset_server) {
  if (conn->closing) return;
  conn->closing = true;
  const bool resets[2] = {reset_client, reset_server};
  uv_tcp_t* handles[2] = {&conn->client, &conn->server};
  for (int i = 0; i < 2; ++i) {
    // A reset is refused while a shutdown is pending: then a plain close.
    if (!resets[i] || uv_tcp_close_reset(handles[i], OnCloseCb) != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(handles[i]), OnCloseCb);
    }
  }
}

void Relay::OnClosed(Connection* conn) {
  if (--conn->open_handles == 0) connections_.erase(conn->id);
}

void Relay::Schedule(int64_t at_ns, const Direction& d) {
  events_.push(Event{at_ns, d.conn->id, d.index});
  if (armed_at_ns_ == 0 || at_ns < armed_at_ns_) Arm();
}

void Relay::Arm() {
  itimerspec spec{};
  armed_at_ns_ = events_.empty() ? 0 : std::max<int64_t>(events_.top().at_ns, 1);
  spec.it_value.tv_sec = armed_at_ns_ / 1000000000;
  spec.it_value.tv_nsec = armed_at_ns_ % 1000000000;
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

void Relay::OnTimer() {
  uint64_t expirations;
  if (read(timer_fd_, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN) return;
  const int64_t now = NowNs();
  while (!events_.empty() && events_.top().at_ns <= now) {
    const Event event = events_.top();
    events_.pop();
    auto it = connections_.find(event.conn_id);
    if (it != connections_.end()) Service(it->second->dirs[event.dir], now);
  }
  Arm();
}

void Relay::OnSignal(int signum) {
  if (signum == SIGUSR1) {
    CloseAll(true);
  } else if (signum == SIGUSR2) {
    stalled_ = !stalled_;
    if (stalled_) return;
    const int64_t now = NowNs();
    for (auto& [id, conn] : connections_) {
      for (const Direction& d : conn->dirs) Schedule(now, d);
    }
  } else {
    Exit();
  }
}

void Relay::CloseAll(bool reset) {
  std::vector<Connection*> open;
  for (auto& [id, conn] : connections_) {
    if (!conn->closing) open.push_back(conn.get());
  }
  for (Connection* conn : open) {
    if (reset) ++resets_;
    Close(conn, reset, reset);
  }
}

void Relay::Exit() {
  if (exiting_) return;  // a second signal while the handles close
  exiting_ = true;
  CloseAll(false);
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), OnHandleClosedCb);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_poll_), OnHandleClosedCb);
  for (uv_signal_t& handle : signals_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&handle), OnHandleClosedCb);
  }
}

int64_t DefaultWindow() {
  std::ifstream in("/proc/sys/net/ipv4/tcp_rmem");
  int64_t low = 0, initial = 0, max = 0;
  if (in >> low >> initial >> max && max > 0) return max;
  return int64_t{6} << 20;
}

bool ParseAddress(const std::string& text, sockaddr_storage* out) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return false;
  std::string host = text.substr(0, colon);
  char* end = nullptr;
  const long port = std::strtol(text.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) return false;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (uv_ip4_addr(host.c_str(), static_cast<int>(port), reinterpret_cast<sockaddr_in*>(out)) == 0) {
    return true;
  }
  return uv_ip6_addr(host.c_str(), static_cast<int>(port), reinterpret_cast<sockaddr_in6*>(out)) ==
         0;
}

bool ParseNumber(const char* text, double low, double high, double* out) {
  char* end = nullptr;
  errno = 0;
  *out = std::strtod(text, &end);
  return end != text && *end == '\0' && errno == 0 && *out >= low && *out <= high;
}

bool Fail(std::string* error, std::string message) {
  *error = std::move(message);
  return false;
}

// Fills options from argv; on a bad argument, a message in error and false.
bool ParseOptions(int argc, char** argv, Options* options, std::string* error) {
  bool have_listen = false, have_to = false;
  double value = 0;
  options->window = DefaultWindow();
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return Fail(error, flag + " needs a value (or is unknown)");
    const char* arg = argv[++i];
    if (flag == "--listen" || flag == "--to") {
      if (!ParseAddress(arg, flag == "--listen" ? &options->listen : &options->to)) {
        return Fail(error, flag + ": want a numeric HOST:PORT, got \"" + arg + "\"");
      }
      (flag == "--listen" ? have_listen : have_to) = true;
    } else if (flag == "--delay-ms" && ParseNumber(arg, 0, 60000, &value)) {
      options->delay_ns = static_cast<int64_t>(value * kNsPerMs);
    } else if (flag == "--bandwidth-mbps" && ParseNumber(arg, 0, 1e6, &value)) {
      options->bandwidth_mbps = value;
    } else if (flag == "--loss-pct" && ParseNumber(arg, 0, 100, &value)) {
      options->loss = value / 100.0;
    } else if (flag == "--window" && ParseNumber(arg, 1, 1e12, &value)) {
      options->window = static_cast<int64_t>(value);
    } else if (flag == "--seed" && ParseNumber(arg, 0, 1e18, &value)) {
      options->seed = static_cast<uint64_t>(value);
    } else {
      return Fail(error, "bad argument: " + flag + " " + arg);
    }
  }
  if (!have_listen || !have_to) return Fail(error, "--listen and --to are required");
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  std::string error;
  if (!ParseOptions(argc, argv, &options, &error)) {
    std::fprintf(stderr,
                 "sluice_wan_relay: %s\nusage: sluice_wan_relay --listen HOST:PORT --to "
                 "HOST:PORT [--delay-ms D] [--bandwidth-mbps B] [--loss-pct P] "
                 "[--window BYTES] [--seed S]\n",
                 error.c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t* loop = uv_default_loop();
  auto relay = std::make_unique<Relay>(loop, options);
  if (const int rc = relay->Start(); rc != 0) {
    std::fprintf(stderr, "sluice_wan_relay: cannot start: %s\n", uv_strerror(rc));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  relay->PrintTotals();
  uv_loop_close(loop);
  return 0;
}
