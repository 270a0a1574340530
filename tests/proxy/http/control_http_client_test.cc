#include "proxy/http/control_http_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/proxy/loop_test_util.h"
#include "tests/proxy/socket_test_util.h"

namespace sluice {
namespace {

// What the server does with a request, in the order requests arrive (on any connection).
enum class Action {
  kAnswer,                 // 200, HTTP/1.1 keep-alive; the body is "r<n>", n counting from 0
  kAnswerClose,            // 200 saying Connection: close, then closes
  kAnswerHttp10,           // HTTP/1.0 200 without keep-alive, then closes
  kAnswerHttp10KeepAlive,  // HTTP/1.0 200 with Connection: keep-alive; stays open
  kAnswerPart,             // the head and part of the body, then closes
  kAnswerWithExtra,        // as kAnswer, with bytes after the reply in the same segment
  kCloseSilently,          // closes without a byte of reply (FIN)
  kReset,                  // resets without a byte of reply (RST)
  kHold,                   // answers as kAnswer once Release() is called
  kNever,                  // never answers; waits for the client to close
};

// A blocking HTTP/1.1 server on loopback with a thread per connection, scripted request by
// request (kAnswer once the script is used up). Counts what a test of a client's connection
// handling looks at: connections accepted, open, and closed by the client; bytes each way.
class ScriptedServer {
 public:
  ScriptedServer() {
    listen_fd_ = BindLoopback(&address_, 64);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~ScriptedServer() { Stop(); }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  const SocketAddress& address() const { return address_; }

  void Script(const std::vector<Action>& actions) {
    std::lock_guard<std::mutex> lock(mutex_);
    script_.insert(script_.end(), actions.begin(), actions.end());
  }
  // Held requests are answered.
  void Release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }
  // Sends FIN on every open connection, as a server does to its idle keep-alive connections.
  void ShutdownConnections() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [fd, by_server] : open_) {
      by_server = true;
      ::shutdown(fd, SHUT_RDWR);
    }
  }
  // Resets every open connection (RST), as a server that drops its idle connections hard.
  void ResetConnections() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [fd, by_server] : open_) {
      by_server = true;
      linger l{1, 0};  // the serving thread's close() sends RST
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
      ::shutdown(fd, SHUT_RD);  // wakes the serving thread's recv()
    }
  }
  // Waits (bounded, without running any loop) until `open` connections are left.
  bool WaitOpen(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(5), [&] { return open_.size() == count; });
  }
  // Sends `bytes` on every open connection, unasked.
  void SendToOpen(const std::string& bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [fd, by_server] : open_) SendAll(fd, bytes);
  }

  size_t accepted() const { return accepted_; }
  size_t requests() const { return requests_; }
  size_t open() {
    std::lock_guard<std::mutex> lock(mutex_);
    return open_.size();
  }
  // Connections that the client closed (EOF or reset while the server still wanted it).
  size_t client_closes() const { return client_closes_; }
  uint64_t bytes_received() const { return bytes_received_; }
  uint64_t bytes_sent() const { return bytes_sent_; }

  void Stop() {
    if (stopping_.exchange(true)) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      changed_.notify_all();
    }
    ::shutdown(listen_fd_, SHUT_RDWR);
    accept_thread_.join();
    ShutdownConnections();
    for (std::thread& t : connection_threads_) t.join();  // the accept thread added its last
    ::close(listen_fd_);
  }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        open_[fd] = false;
        ++accepted_;
        changed_.notify_all();
      }
      if (stopping_) ::shutdown(fd, SHUT_RDWR);
      connection_threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  Action NextAction() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (script_.empty()) return Action::kAnswer;
    Action a = script_.front();
    script_.pop_front();
    return a;
  }

  // Counts the bytes before they go: counted after, a client could read a whole reply (and the
  // test read bytes_sent()) before this thread counted it.
  bool SendAll(int fd, const std::string& bytes) {
    bytes_sent_ += bytes.size();
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) {
        bytes_sent_ -= bytes.size() - done;  // what never went
        return false;
      }
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // Carries out `action` for request number `n`. False: the server ends the connection.
  bool Act(int fd, Action action, size_t n) {
    std::string body = "r" + std::to_string(n);
    std::string keep_alive =
        "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    switch (action) {
      case Action::kAnswer:
        return SendAll(fd, keep_alive);
      case Action::kAnswerClose:
        SendAll(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
        return false;
      case Action::kAnswerHttp10:
        SendAll(fd, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        return false;
      case Action::kAnswerHttp10KeepAlive:
        return SendAll(fd,
                       "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok");
      case Action::kAnswerWithExtra:
        return SendAll(fd, keep_alive + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra");
      case Action::kAnswerPart:
        SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart");
        return false;
      case Action::kCloseSilently:
        return false;
      case Action::kReset: {
        linger l{1, 0};  // close() sends RST
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        return false;
      }
      case Action::kHold: {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return released_ || stopping_; });
        if (stopping_) return false;
        lock.unlock();
        return SendAll(fd, keep_alive);
      }
      case Action::kNever:
        return true;
    }
    return false;
  }

  void Serve(int fd) {
    std::string buffer;
    char chunk[4096];
    bool server_ends = false;
    while (!server_ends) {
      size_t end = buffer.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        size_t cl = buffer.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) length = std::stoul(buffer.substr(cl + 16));
        if (buffer.size() >= end + 4 + length) {
          buffer.erase(0, end + 4 + length);
          size_t n = requests_++;
          server_ends = !Act(fd, NextAction(), n);
          continue;
        }
      }
      ssize_t got = ::recv(fd, chunk, sizeof(chunk), 0);
      if (got <= 0) break;
      bytes_received_ += static_cast<uint64_t>(got);
      buffer.append(chunk, static_cast<size_t>(got));
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (!server_ends && !open_[fd]) ++client_closes_;
    open_.erase(fd);
    ::close(fd);  // under the lock: ShutdownConnections never sees a reused descriptor
    changed_.notify_all();
  }

  int listen_fd_ = -1;
  SocketAddress address_;
  std::thread accept_thread_;
  std::vector<std::thread> connection_threads_;  // the accept thread's until it ends
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> accepted_{0};
  std::atomic<size_t> requests_{0};
  std::atomic<size_t> client_closes_{0};
  std::atomic<uint64_t> bytes_received_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<int, bool> open_;  // descriptor -> the server shut it down
  std::deque<Action> script_;
  bool released_ = false;
};

std::string Get(bool close = false) {
  return std::string("GET /v3/kv/range HTTP/1.1\r\nHost: etcd\r\n") +
         (close ? "Connection: close\r\n" : "") + "\r\n";
}

std::string Post(const std::string& body) {
  return "POST /v3/kv/put HTTP/1.1\r\nHost: etcd\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

class ControlHttpClientTest : public ::testing::Test {
 protected:
  void TearDown() override {
    pool_.reset();
    server_->Stop();  // requests still waiting see the connection end
    // Every connection closed and freed: none leaked by the pool.
    EXPECT_TRUE(loop_.RunUntil([&] { return TcpHandles() == 0; }));
  }

  size_t TcpHandles() {
    size_t count = 0;
    uv_walk(
        loop_.loop(),
        [](uv_handle_t* h, void* arg) {
          if (h->type == UV_TCP) ++*static_cast<size_t*>(arg);
        },
        &count);
    return count;
  }

  ControlHttpOptions Options() {
    ControlHttpOptions options;
    options.timeout = absl::Seconds(5);
    options.pool = pool_.get();
    options.counters = &counters_;
    return options;
  }

  // Starts a request to the server; its reply is kept as replies_[id].
  int Start(std::string request, ControlHttpOptions options) {
    int id = next_id_++;
    handles_[id] =
        StartControlHttpRequest(loop_.context(), server_->address(), std::move(request),
                                std::move(options), [this, id](const ControlHttpReply& r) {
                                  EXPECT_EQ(replies_.count(id), 0u) << "twice";
                                  replies_[id] = r;
                                });
    EXPECT_EQ(replies_.count(id), 0u) << "the callback ran inside the call";
    return id;
  }
  int Start(std::string request) { return Start(std::move(request), Options()); }
  bool Wait(int id) {
    return loop_.RunUntil([&] { return replies_.count(id) == 1; });
  }
  // One request, waited for.
  const ControlHttpReply& Fetch(std::string request) {
    int id = Start(std::move(request));
    EXPECT_TRUE(Wait(id));
    return replies_[id];
  }

  TestLoop loop_;
  std::unique_ptr<ScriptedServer> server_ = std::make_unique<ScriptedServer>();
  ControlHttpCounters counters_;
  std::unique_ptr<ControlHttpPool> pool_;
  std::map<int, ControlHttpReply> replies_;
  std::map<int, ControlHttpRequest*> handles_;
  int next_id_ = 0;
};

TEST_F(ControlHttpClientTest, WithoutPoolEachRequestHasItsOwnConnection) {
  for (int i = 0; i < 3; ++i) {
    const ControlHttpReply& reply = Fetch(Get(true));
    ASSERT_TRUE(reply.ok) << reply.error;
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.body, "r" + std::to_string(i));
    EXPECT_FALSE(reply.reused);
    EXPECT_TRUE(reply.received);
  }
  EXPECT_EQ(counters_.requests, 3u);
  EXPECT_EQ(counters_.connections, 3u);
  EXPECT_EQ(server_->accepted(), 3u);
  // The server allowed keep-alive; the client closed each connection anyway.
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 3; }));
  EXPECT_EQ(TcpHandles(), 0u);
}

TEST_F(ControlHttpClientTest, PooledRequestsShareOneConnection) {
  pool_ = std::make_unique<ControlHttpPool>();
  for (int i = 0; i < 5; ++i) {
    const ControlHttpReply& reply = Fetch(Get());
    ASSERT_TRUE(reply.ok) << reply.error;
    EXPECT_EQ(reply.body, "r" + std::to_string(i));  // each reply to its own request
    EXPECT_EQ(reply.reused, i > 0);
    EXPECT_TRUE(reply.received);
    EXPECT_EQ(pool_->idle(), 1u);
  }
  EXPECT_EQ(counters_.requests, 5u);
  EXPECT_EQ(counters_.connections, 1u);
  EXPECT_EQ(server_->accepted(), 1u);
  EXPECT_EQ(server_->requests(), 5u);
  EXPECT_EQ(server_->client_closes(), 0u);

  // Closing the pool closes the idle connection.
  pool_->CloseAll();
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 1; }));
  const ControlHttpReply& after = Fetch(Get());
  ASSERT_TRUE(after.ok) << after.error;
  EXPECT_FALSE(after.reused);
  EXPECT_EQ(server_->accepted(), 2u);
}

// The next request of a chain is started from the reply's callback (as the etcd client does:
// Unary's `done` runs inside the reply's callback, and so does a call after authentication):
// it finds the connection the reply came on (parked before the callback runs).
TEST_F(ControlHttpClientTest, RequestStartedFromTheCallbackReusesTheConnection) {
  pool_ = std::make_unique<ControlHttpPool>();
  int chained = 0;
  std::vector<ControlHttpReply> chain;
  std::function<void()> next = [&] {
    StartControlHttpRequest(loop_.context(), server_->address(), Get(), Options(),
                            [&](const ControlHttpReply& reply) {
                              chain.push_back(reply);
                              if (++chained < 4) next();
                            });
  };
  next();
  ASSERT_TRUE(loop_.RunUntil([&] { return chain.size() == 4; }));
  for (const ControlHttpReply& reply : chain) EXPECT_TRUE(reply.ok) << reply.error;
  EXPECT_EQ(server_->accepted(), 1u);
  EXPECT_EQ(counters_.connections, 1u);
  EXPECT_EQ(pool_->idle(), 1u);
}

TEST_F(ControlHttpClientTest, ConcurrentRequestsOpenAConnectionEachAndParkBoth) {
  pool_ = std::make_unique<ControlHttpPool>();
  int a = Start(Get());
  int b = Start(Get());
  ASSERT_TRUE(Wait(a));
  ASSERT_TRUE(Wait(b));
  EXPECT_TRUE(replies_[a].ok && replies_[b].ok);
  EXPECT_FALSE(replies_[a].reused || replies_[b].reused);
  EXPECT_EQ(server_->accepted(), 2u);
  EXPECT_EQ(counters_.connections, 2u);
  EXPECT_EQ(pool_->idle(), 2u);

  // Both are used again.
  int c = Start(Get());
  int d = Start(Get());
  ASSERT_TRUE(Wait(c));
  ASSERT_TRUE(Wait(d));
  EXPECT_TRUE(replies_[c].ok && replies_[c].reused);
  EXPECT_TRUE(replies_[d].ok && replies_[d].reused);
  EXPECT_EQ(server_->accepted(), 2u);
  EXPECT_EQ(counters_.connections, 2u);
  EXPECT_EQ(counters_.requests, 4u);
  EXPECT_EQ(pool_->idle(), 2u);
}

TEST_F(ControlHttpClientTest, MaxIdlePerAddressIsHonoured) {
  pool_ = std::make_unique<ControlHttpPool>(1);
  int ids[3];
  for (int& id : ids) id = Start(Get());
  for (int id : ids) {
    ASSERT_TRUE(Wait(id));
    EXPECT_TRUE(replies_[id].ok) << replies_[id].error;
  }
  EXPECT_EQ(server_->accepted(), 3u);
  EXPECT_EQ(pool_->idle(), 1u);
  // The two that did not fit were closed.
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 2; }));
  EXPECT_EQ(server_->open(), 1u);

  const ControlHttpReply& next = Fetch(Get());
  EXPECT_TRUE(next.ok && next.reused);
  EXPECT_EQ(server_->accepted(), 3u);
}

TEST_F(ControlHttpClientTest, MaxIdleIsPerAddress) {
  pool_ = std::make_unique<ControlHttpPool>(1);
  ScriptedServer other;
  int a = Start(Get());
  ControlHttpReply b_reply;
  bool b_done = false;
  StartControlHttpRequest(loop_.context(), other.address(), Get(), Options(),
                          [&](const ControlHttpReply& r) {
                            b_reply = r;
                            b_done = true;
                          });
  ASSERT_TRUE(Wait(a));
  ASSERT_TRUE(loop_.RunUntil([&] { return b_done; }));
  EXPECT_TRUE(replies_[a].ok && b_reply.ok);
  EXPECT_EQ(pool_->idle(), 2u);

  // Each address gets its own connection back.
  const ControlHttpReply& again = Fetch(Get());
  EXPECT_TRUE(again.ok && again.reused);
  EXPECT_EQ(server_->accepted(), 1u);
  EXPECT_EQ(other.requests(), 1u);

  pool_.reset();  // before `other` goes
  EXPECT_TRUE(loop_.RunUntil([&] { return other.client_closes() == 1; }));
}

TEST_F(ControlHttpClientTest, ConnectionCloseReplyIsNotPooled) {
  pool_ = std::make_unique<ControlHttpPool>();
  server_->Script({Action::kAnswerClose});
  const ControlHttpReply& first = Fetch(Get());
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(first.body, "ok");
  EXPECT_EQ(pool_->idle(), 0u);

  const ControlHttpReply& second = Fetch(Get());
  ASSERT_TRUE(second.ok) << second.error;
  EXPECT_FALSE(second.reused);
  EXPECT_EQ(server_->accepted(), 2u);
  EXPECT_EQ(counters_.connections, 2u);
  EXPECT_EQ(pool_->idle(), 1u);
}

TEST_F(ControlHttpClientTest, Http10ReplyWithoutKeepAliveIsNotPooled) {
  pool_ = std::make_unique<ControlHttpPool>();
  server_->Script({Action::kAnswerHttp10});
  const ControlHttpReply& first = Fetch(Get());
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(pool_->idle(), 0u);

  const ControlHttpReply& second = Fetch(Get());
  ASSERT_TRUE(second.ok) << second.error;
  EXPECT_FALSE(second.reused);
  EXPECT_EQ(server_->accepted(), 2u);
}

TEST_F(ControlHttpClientTest, Http10ReplyWithKeepAliveIsPooled) {
  pool_ = std::make_unique<ControlHttpPool>();
  server_->Script({Action::kAnswerHttp10KeepAlive});
  const ControlHttpReply& first = Fetch(Get());
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(pool_->idle(), 1u);

  const ControlHttpReply& second = Fetch(Get());
  ASSERT_TRUE(second.ok) << second.error;
  EXPECT_TRUE(second.reused);
  EXPECT_EQ(server_->accepted(), 1u);
}

TEST_F(ControlHttpClientTest, IdleConnectionClosedByServerIsDropped) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  ASSERT_EQ(pool_->idle(), 1u);

  server_->ShutdownConnections();
  EXPECT_TRUE(loop_.RunUntil([&] { return pool_->idle() == 0; }));
  EXPECT_TRUE(loop_.RunUntil([&] { return TcpHandles() == 0; }));

  const ControlHttpReply& next = Fetch(Get());
  ASSERT_TRUE(next.ok) << next.error;
  EXPECT_FALSE(next.reused);
  EXPECT_EQ(server_->accepted(), 2u);
  EXPECT_EQ(counters_.connections, 2u);
}

TEST_F(ControlHttpClientTest, IdleConnectionResetByServerIsDropped) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  ASSERT_EQ(pool_->idle(), 1u);

  server_->ResetConnections();
  EXPECT_TRUE(loop_.RunUntil([&] { return pool_->idle() == 0; }));
  EXPECT_TRUE(loop_.RunUntil([&] { return TcpHandles() == 0; }));
  const ControlHttpReply& next = Fetch(Get());
  ASSERT_TRUE(next.ok) << next.error;
  EXPECT_FALSE(next.reused);
}

// The server closed the idle connection, and the loop has not seen it yet when the next
// request takes the connection: the reply says the request may be sent again.
TEST_F(ControlHttpClientTest, RequestOnConnectionClosedUnnoticedSaysRetry) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  server_->ShutdownConnections();
  ASSERT_TRUE(server_->WaitOpen(0));  // closed on the server, the loop not run since
  ASSERT_EQ(pool_->idle(), 1u);

  const ControlHttpReply& lost = Fetch(Get());
  EXPECT_FALSE(lost.ok);
  EXPECT_TRUE(lost.reused);
  EXPECT_FALSE(lost.received);
  EXPECT_FALSE(lost.timed_out);
  EXPECT_FALSE(lost.error.empty());
  EXPECT_EQ(server_->requests(), 1u);
  EXPECT_EQ(pool_->idle(), 0u);

  // What the etcd client does then: again, on a new connection.
  const ControlHttpReply& again = Fetch(Get());
  ASSERT_TRUE(again.ok) << again.error;
  EXPECT_FALSE(again.reused);
  EXPECT_EQ(server_->accepted(), 2u);
  EXPECT_EQ(counters_.requests, 3u);
  EXPECT_EQ(counters_.connections, 2u);
}

TEST_F(ControlHttpClientTest, CloseWithoutReplyOnReusedConnectionSaysRetry) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  server_->Script({Action::kCloseSilently});
  const ControlHttpReply& lost = Fetch(Get());
  EXPECT_FALSE(lost.ok);
  EXPECT_TRUE(lost.reused);
  EXPECT_FALSE(lost.received);
  EXPECT_FALSE(lost.timed_out);
  EXPECT_EQ(server_->requests(), 2u);  // the server did get it
  EXPECT_EQ(pool_->idle(), 0u);

  const ControlHttpReply& again = Fetch(Get());
  ASSERT_TRUE(again.ok) << again.error;
  EXPECT_FALSE(again.reused);
  EXPECT_EQ(server_->accepted(), 2u);
}

TEST_F(ControlHttpClientTest, ResetWithoutReplyOnReusedConnectionSaysRetry) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  server_->Script({Action::kReset});
  const ControlHttpReply& lost = Fetch(Get());
  EXPECT_FALSE(lost.ok);
  EXPECT_TRUE(lost.reused);
  EXPECT_FALSE(lost.received);
  EXPECT_FALSE(lost.timed_out);
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_TRUE(Fetch(Get()).ok);
}

// Part of a reply arrived: the server may have acted on the request, so no retry.
TEST_F(ControlHttpClientTest, PartialReplyOnReusedConnectionIsReceived) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  server_->Script({Action::kAnswerPart});
  const ControlHttpReply& cut = Fetch(Get());
  EXPECT_FALSE(cut.ok);
  EXPECT_TRUE(cut.reused);
  EXPECT_TRUE(cut.received);
  EXPECT_FALSE(cut.timed_out);
  EXPECT_EQ(pool_->idle(), 0u);
}

// No reply in time on a reused connection: timed out, not to be sent again blindly, and the
// connection is not parked (its reply may still come).
TEST_F(ControlHttpClientTest, TimeoutOnReusedConnectionIsNotParked) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  server_->Script({Action::kNever});
  ControlHttpOptions options = Options();
  options.timeout = absl::Milliseconds(50);
  int id = Start(Get(), options);
  ASSERT_TRUE(Wait(id));
  const ControlHttpReply& late = replies_[id];
  EXPECT_FALSE(late.ok);
  EXPECT_TRUE(late.reused);
  EXPECT_FALSE(late.received);
  EXPECT_TRUE(late.timed_out);
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 1; }));
}

TEST_F(ControlHttpClientTest, IdleTimeoutClosesTheConnection) {
  pool_ = std::make_unique<ControlHttpPool>(4, absl::Milliseconds(50));
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(Fetch(Get()).ok);
  EXPECT_EQ(pool_->idle(), 1u);
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 1; }, 2000));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(40));
  EXPECT_EQ(pool_->idle(), 0u);

  const ControlHttpReply& next = Fetch(Get());
  ASSERT_TRUE(next.ok) << next.error;
  EXPECT_FALSE(next.reused);
  EXPECT_EQ(server_->accepted(), 2u);
}

// A connection taken from the pool runs on the request's timeout, not the idle one: a reply
// slower than the idle timeout still arrives.
TEST_F(ControlHttpClientTest, ReusedConnectionIsNotClosedByTheIdleTimeout) {
  pool_ = std::make_unique<ControlHttpPool>(4, absl::Milliseconds(50));
  ASSERT_TRUE(Fetch(Get()).ok);
  server_->Script({Action::kHold});
  int id = Start(Get());
  ASSERT_TRUE(loop_.RunUntil([&] { return server_->requests() == 2; }));

  // Another connection parked later, on the same idle timeout: once it expired, the first
  // connection's would have too (no time is waited for beyond what the pool needs).
  ScriptedServer other;
  bool parked = false;
  StartControlHttpRequest(loop_.context(), other.address(), Get(), Options(),
                          [&](const ControlHttpReply& reply) { parked = reply.ok; });
  ASSERT_TRUE(loop_.RunUntil([&] { return parked; }));
  ASSERT_TRUE(loop_.RunUntil([&] { return other.client_closes() == 1; }));
  EXPECT_EQ(replies_.count(id), 0u);
  EXPECT_EQ(server_->client_closes(), 0u);

  server_->Release();
  ASSERT_TRUE(Wait(id));
  EXPECT_TRUE(replies_[id].ok) << replies_[id].error;
  EXPECT_TRUE(replies_[id].reused);
  EXPECT_EQ(pool_->idle(), 1u);
}

// Bytes nobody asked for on an idle connection: it is not used again.
TEST_F(ControlHttpClientTest, UnaskedBytesOnIdleConnectionCloseIt) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  ASSERT_EQ(pool_->idle(), 1u);
  server_->SendToOpen("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra");
  EXPECT_TRUE(loop_.RunUntil([&] { return pool_->idle() == 0; }));
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 1; }));

  const ControlHttpReply& next = Fetch(Get());
  ASSERT_TRUE(next.ok) << next.error;
  EXPECT_FALSE(next.reused);
  EXPECT_EQ(next.body, "r1");
}

// The same bytes in the read that ended the reply: the connection is out of step with its
// requests and must not be used again either.
TEST_F(ControlHttpClientTest, BytesAfterTheReplyInTheSameReadAreNotParked) {
  pool_ = std::make_unique<ControlHttpPool>();
  server_->Script({Action::kAnswerWithExtra});
  const ControlHttpReply& first = Fetch(Get());
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(first.body, "r0");
  EXPECT_EQ(pool_->idle(), 0u);

  const ControlHttpReply& next = Fetch(Get());
  ASSERT_TRUE(next.ok) << next.error;
  EXPECT_EQ(next.body, "r1");
  EXPECT_FALSE(next.reused);
}

TEST_F(ControlHttpClientTest, StreamedRequestIsNotPooled) {
  pool_ = std::make_unique<ControlHttpPool>();
  std::string streamed;
  ControlHttpOptions options = Options();
  options.on_body = [&](int status, std::string_view data) {
    EXPECT_EQ(status, 200);
    streamed.append(data);
  };
  int id = Start(Get(), options);
  ASSERT_TRUE(Wait(id));
  EXPECT_TRUE(replies_[id].ok) << replies_[id].error;
  EXPECT_EQ(streamed, "r0");
  EXPECT_TRUE(replies_[id].body.empty());
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 1; }));

  const ControlHttpReply& next = Fetch(Get());
  ASSERT_TRUE(next.ok) << next.error;
  EXPECT_FALSE(next.reused);
  EXPECT_EQ(server_->accepted(), 2u);
}

// A streamed request may take an idle connection, but does not give it back.
TEST_F(ControlHttpClientTest, StreamedRequestOnPooledConnectionClosesIt) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  std::string streamed;
  ControlHttpOptions options = Options();
  options.on_body = [&](int, std::string_view data) { streamed.append(data); };
  int id = Start(Get(), options);
  ASSERT_TRUE(Wait(id));
  EXPECT_TRUE(replies_[id].ok) << replies_[id].error;
  EXPECT_EQ(streamed, "r1");
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 1; }));
}

TEST_F(ControlHttpClientTest, PoolDestroyedWithRequestInFlight) {
  pool_ = std::make_unique<ControlHttpPool>();
  server_->Script({Action::kAnswer, Action::kHold});
  int a = Start(Get());
  int b = Start(Get());
  // One answered and parked, one held by the server.
  ASSERT_TRUE(loop_.RunUntil([&] { return replies_.size() == 1 && server_->requests() == 2; }));
  ASSERT_EQ(pool_->idle(), 1u);

  pool_.reset();  // closes the idle one
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 1; }));
  EXPECT_EQ(replies_.size(), 1u);

  server_->Release();
  ASSERT_TRUE(Wait(a));
  ASSERT_TRUE(Wait(b));
  EXPECT_TRUE(replies_[a].ok) << replies_[a].error;
  EXPECT_TRUE(replies_[b].ok) << replies_[b].error;
  // The one in flight finished normally, then closed.
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 2; }));
  EXPECT_TRUE(loop_.RunUntil([&] { return TcpHandles() == 0; }));
}

TEST_F(ControlHttpClientTest, PoolDestroyedFromTheReplyCallback) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  bool done = false;
  StartControlHttpRequest(loop_.context(), server_->address(), Get(), Options(),
                          [&](const ControlHttpReply& reply) {
                            EXPECT_TRUE(reply.ok && reply.reused);
                            pool_.reset();
                            done = true;
                          });
  ASSERT_TRUE(loop_.RunUntil([&] { return done; }));
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 1; }));
  EXPECT_TRUE(loop_.RunUntil([&] { return TcpHandles() == 0; }));
}

TEST_F(ControlHttpClientTest, RefusedConnectionIsNotParked) {
  pool_ = std::make_unique<ControlHttpPool>();
  // A loopback port nobody listens on: bound, then closed.
  SocketAddress closed = ClosedLoopbackPort();
  ControlHttpReply refused;
  bool done = false;
  StartControlHttpRequest(loop_.context(), closed, Get(), Options(),
                          [&](const ControlHttpReply& reply) {
                            refused = reply;
                            done = true;
                          });
  ASSERT_TRUE(loop_.RunUntil([&] { return done; }));
  EXPECT_FALSE(refused.ok);
  EXPECT_FALSE(refused.reused);
  EXPECT_FALSE(refused.received);
  EXPECT_FALSE(refused.timed_out);
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_EQ(counters_.connections, 1u);
  EXPECT_TRUE(loop_.RunUntil([&] { return TcpHandles() == 0; }));
}

TEST_F(ControlHttpClientTest, CountersMatchTheWire) {
  pool_ = std::make_unique<ControlHttpPool>();
  std::vector<std::string> requests = {Post("{}"), Post(std::string(3000, 'x')), Get()};
  uint64_t sent = 0;
  for (const std::string& request : requests) {
    sent += request.size();
    ASSERT_TRUE(Fetch(request).ok);
  }
  EXPECT_EQ(counters_.requests, 3u);
  EXPECT_EQ(counters_.connections, 1u);
  EXPECT_EQ(counters_.tx_bytes, sent);
  EXPECT_EQ(server_->bytes_received(), sent);
  EXPECT_EQ(counters_.rx_bytes, server_->bytes_sent());
  EXPECT_GT(counters_.rx_bytes, 0u);
  EXPECT_EQ(counters_.tls_handshakes, 0u);

  // Without a pool the same.
  ControlHttpCounters plain;
  ControlHttpOptions options;
  options.counters = &plain;
  uint64_t rx_before = server_->bytes_sent();
  int id = Start(Get(true), options);
  ASSERT_TRUE(Wait(id));
  EXPECT_EQ(plain.requests, 1u);
  EXPECT_EQ(plain.connections, 1u);
  EXPECT_EQ(plain.tx_bytes, Get(true).size());
  EXPECT_EQ(plain.rx_bytes, server_->bytes_sent() - rx_before);
}

// A reused connection counts for the request that uses it, not for the one that opened it.
TEST_F(ControlHttpClientTest, ReusedConnectionCountsForItsNewRequest) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  ControlHttpCounters first = counters_;

  ControlHttpCounters other;
  ControlHttpOptions options = Options();
  options.counters = &other;
  uint64_t rx_before = server_->bytes_sent();
  int id = Start(Post("abc"), options);
  ASSERT_TRUE(Wait(id));
  ASSERT_TRUE(replies_[id].ok && replies_[id].reused);
  EXPECT_EQ(other.requests, 1u);
  EXPECT_EQ(other.connections, 0u);
  EXPECT_EQ(other.tx_bytes, Post("abc").size());
  EXPECT_EQ(other.rx_bytes, server_->bytes_sent() - rx_before);
  EXPECT_EQ(counters_.requests, first.requests);
  EXPECT_EQ(counters_.tx_bytes, first.tx_bytes);
  EXPECT_EQ(counters_.rx_bytes, first.rx_bytes);
}

TEST_F(ControlHttpClientTest, CancelledReusedRequestIsNotParked) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  server_->Script({Action::kNever});
  int id = Start(Get());
  ASSERT_TRUE(loop_.RunUntil([&] { return server_->requests() == 2; }));
  CancelControlHttpRequest(handles_[id]);
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 1; }));
  EXPECT_TRUE(loop_.RunUntil([&] { return TcpHandles() == 0; }));
  EXPECT_EQ(replies_.count(id), 0u);  // the callback never ran

  const ControlHttpReply& next = Fetch(Get());
  ASSERT_TRUE(next.ok) << next.error;
  EXPECT_FALSE(next.reused);
  EXPECT_EQ(server_->accepted(), 2u);
}

TEST_F(ControlHttpClientTest, CancelledNewPooledRequestIsNotParked) {
  pool_ = std::make_unique<ControlHttpPool>();
  server_->Script({Action::kNever});
  int id = Start(Get());
  ASSERT_TRUE(loop_.RunUntil([&] { return server_->requests() == 1; }));
  CancelControlHttpRequest(handles_[id]);
  EXPECT_TRUE(loop_.RunUntil([&] { return server_->client_closes() == 1; }));
  EXPECT_TRUE(loop_.RunUntil([&] { return TcpHandles() == 0; }));
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_EQ(replies_.count(id), 0u);
}

// Cancelled in the same turn as it was started, before its bytes went out.
TEST_F(ControlHttpClientTest, CancelledAtOnceOnReusedConnection) {
  pool_ = std::make_unique<ControlHttpPool>();
  ASSERT_TRUE(Fetch(Get()).ok);
  int id = Start(Get());
  CancelControlHttpRequest(handles_[id]);
  EXPECT_TRUE(loop_.RunUntil([&] { return TcpHandles() == 0; }));
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_EQ(replies_.count(id), 0u);
}

}  // namespace
}  // namespace sluice
