#include "proxy/net/tcp_stream.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "proxy/net/listen_socket.h"
#include "tests/proxy/loop_test_util.h"
#include "tests/proxy/tls_test_util.h"

namespace sluice {
namespace {

struct Events : TcpStream::Handler {
  std::string read;
  bool eof = false;
  int error = 0;
  int drained = 0;
  bool connected = false;
  bool established = false;  // a server's TLS handshake
  bool closed = false;
  void OnStreamRead(const char* data, size_t len) override { read.append(data, len); }
  void OnStreamEof() override { eof = true; }
  void OnStreamError(int e) override { error = e; }
  void OnStreamDrained() override { ++drained; }
  void OnStreamConnected() override { connected = true; }
  void OnTlsEstablished() override { established = true; }
  void OnStreamClosed() override { closed = true; }
};

class TcpStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<int> fd = BindListenSocket(*SocketAddress::Parse("127.0.0.1:0"), 16);
    ASSERT_TRUE(fd.ok()) << fd.status();
    listen_fd_ = *fd;
    sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    address_ = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&addr));
    stream_ = std::make_unique<TcpStream>(loop_.context(), &events_);
    ASSERT_EQ(stream_->Init(), 0);
    ASSERT_EQ(stream_->Connect(address_.sockaddr_ptr()), 0);
    ASSERT_TRUE(loop_.RunUntil([&] { return events_.connected; }));
    peer_ = ::accept(listen_fd_, nullptr, nullptr);
    ASSERT_GE(peer_, 0);
    ASSERT_EQ(stream_->StartReading(), 0);
  }
  void TearDown() override {
    if (!stream_->closing()) stream_->Close();
    EXPECT_TRUE(loop_.RunUntil([&] { return events_.closed; }));
    if (peer_ >= 0) ::close(peer_);
    ::close(listen_fd_);
  }
  std::string PeerRead(size_t n) {
    std::string out;
    char buf[65536];
    while (out.size() < n) {
      ssize_t got = ::recv(peer_, buf, sizeof(buf), 0);
      if (got <= 0) break;
      out.append(buf, static_cast<size_t>(got));
    }
    return out;
  }

  TestLoop loop_;
  Events events_;
  std::unique_ptr<TcpStream> stream_;
  SocketAddress address_;
  int listen_fd_ = -1;
  int peer_ = -1;
};

TEST_F(TcpStreamTest, WritesAreCoalescedAndDelivered) {
  stream_->Write("hello ");
  stream_->Write("wor", "ld");
  EXPECT_EQ(stream_->queued_bytes(), 11u);  // nothing is written before the deferred flush
  EXPECT_TRUE(loop_.RunUntil([&] { return events_.drained > 0; }));
  EXPECT_EQ(events_.drained, 1);  // one flush for three writes
  EXPECT_EQ(stream_->queued_bytes(), 0u);
  EXPECT_EQ(PeerRead(11), "hello world");
}

TEST_F(TcpStreamTest, ReadsAndEof) {
  ASSERT_EQ(::send(peer_, "ping", 4, 0), 4);
  EXPECT_TRUE(loop_.RunUntil([&] { return events_.read == "ping"; }));
  ::shutdown(peer_, SHUT_WR);
  EXPECT_TRUE(loop_.RunUntil([&] { return events_.eof; }));
  EXPECT_FALSE(stream_->reading());
}

TEST_F(TcpStreamTest, LargeWriteQueuesUntilThePeerReads) {
  std::string big(8 << 20, 'x');
  stream_->Write(big);
  loop_.RunUntil([] { return false; }, 50);
  EXPECT_GT(stream_->queued_bytes(), 0u);  // the kernel could not take 8 MiB at once
  std::string got;
  while (got.size() < big.size()) {
    loop_.RunUntil([] { return false; }, 1);
    char buf[1 << 16];
    ssize_t n = ::recv(peer_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_TRUE(loop_.RunUntil([&] { return events_.drained > 0; }));
  EXPECT_EQ(got.size(), big.size());
}

TEST_F(TcpStreamTest, PeerResetIsAnErrorAndCloseCompletes) {
  linger hard{1, 0};
  setsockopt(peer_, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  ::close(peer_);  // RST
  peer_ = -1;
  std::string big(4 << 20, 'y');
  for (int i = 0; i < 4 && events_.error == 0; ++i) {
    stream_->Write(big);
    loop_.RunUntil([&] { return events_.error != 0; }, 500);
  }
  EXPECT_NE(events_.error, 0);
  stream_->Close();
  EXPECT_TRUE(loop_.RunUntil([&] { return events_.closed; }));
  stream_->Write("ignored after close");
}

TEST_F(TcpStreamTest, ShutdownWriteSendsFinAfterQueuedBytes) {
  stream_->Write("last words");
  stream_->ShutdownWrite();
  stream_->Write("dropped");  // nothing may follow a shutdown
  loop_.RunUntil([] { return false; }, 50);
  EXPECT_EQ(PeerRead(100), "last words");  // PeerRead stops at the FIN
}

// Waits (bounded) until the kernel has the peer's reset for `fd`.
bool ResetArrived(int fd) {
  pollfd p{fd, 0, 0};  // POLLERR is reported whatever is asked for
  return ::poll(&p, 1, 5000) == 1 && (p.revents & POLLERR);
}

TEST_F(TcpStreamTest, BytesThatCameBeforeAResetAreReadFirst) {
  ASSERT_EQ(::send(peer_, "last", 4, 0), 4);
  linger hard{1, 0};
  setsockopt(peer_, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  stream_->StopReading();  // both arrive before the stream looks
  ::close(peer_);          // RST
  peer_ = -1;
  ASSERT_TRUE(ResetArrived(stream_->fd()));
  ASSERT_EQ(stream_->StartReading(), 0);
  EXPECT_TRUE(loop_.RunUntil([&] { return events_.error != 0 || events_.eof; }));
  EXPECT_EQ(events_.read, "last");
  EXPECT_EQ(events_.error, UV_ECONNRESET);
}

TEST_F(TcpStreamTest, AResetAfterTheEndIsNotAnError) {
  // The peer's FIN, then its RST: the stream reads the end, as libuv's streams did, and has
  // nothing to write, so there is no error to report.
  ASSERT_EQ(::send(peer_, "bye", 3, 0), 3);
  ::shutdown(peer_, SHUT_WR);
  linger hard{1, 0};
  setsockopt(peer_, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  stream_->StopReading();
  ::close(peer_);
  peer_ = -1;
  ASSERT_TRUE(ResetArrived(stream_->fd()));
  ASSERT_EQ(stream_->StartReading(), 0);
  EXPECT_TRUE(loop_.RunUntil([&] { return events_.eof; }));
  loop_.RunUntil([&] { return events_.error != 0; }, 50);
  EXPECT_EQ(events_.read, "bye");
  EXPECT_EQ(events_.error, 0);
  // Writing now meets the reset.
  stream_->Write("too late");
  EXPECT_TRUE(loop_.RunUntil([&] { return events_.error != 0; }));
}

TEST_F(TcpStreamTest, TheOutputQueueIsPooledAndGivenBack) {
  LoopContext* context = loop_.context();
  std::unique_ptr<std::string> marked = context->TakeBoxedBuffer();
  const std::string* pooled = marked.get();
  context->GiveBoxedBuffer(std::move(marked));
  stream_->Write("one");  // takes the pooled buffer
  std::unique_ptr<std::string> other = context->TakeBoxedBuffer();
  EXPECT_NE(other.get(), pooled);  // the stream holds it while bytes wait
  context->GiveBoxedBuffer(std::move(other));
  ASSERT_TRUE(loop_.RunUntil([&] { return events_.drained == 1; }));
  std::unique_ptr<std::string> back = context->TakeBoxedBuffer();
  EXPECT_EQ(back.get(), pooled);  // drained: an idle stream holds no buffer
  context->GiveBoxedBuffer(std::move(back));
  EXPECT_EQ(PeerRead(3), "one");
}

// A listening socket on a free loopback port, and its address.
struct LoopbackListener {
  LoopbackListener() {
    absl::StatusOr<int> bound = BindListenSocket(*SocketAddress::Parse("127.0.0.1:0"), 4);
    if (!bound.ok()) return;
    fd = *bound;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  }
  ~LoopbackListener() {
    if (fd >= 0) ::close(fd);
  }
  const sockaddr* address() const { return reinterpret_cast<const sockaddr*>(&addr); }
  int fd = -1;
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
};

TEST(TcpStreamAdoptTest, AnAcceptedSocketIsAdopted) {
  TestLoop loop;
  Events events;
  LoopbackListener listener;
  ASSERT_GE(listener.fd, 0);
  int client = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(client, listener.address(), listener.len), 0);
  timeval bound{5, 0};  // a stream that does not answer or close fails the test, not hangs it
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));
  pollfd ready{listener.fd, POLLIN, 0};
  ASSERT_EQ(::poll(&ready, 1, 5000), 1);
  int accepted = ::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  TcpStream stream(loop.context(), &events);
  ASSERT_EQ(stream.Init(), 0);
  ASSERT_EQ(stream.Adopt(accepted), 0);
  EXPECT_EQ(stream.fd(), accepted);
  ASSERT_EQ(stream.StartReading(), 0);
  ASSERT_EQ(::send(client, "hi", 2, 0), 2);
  EXPECT_TRUE(loop.RunUntil([&] { return events.read == "hi"; }));
  stream.Write("yo");
  EXPECT_TRUE(loop.RunUntil([&] { return events.drained == 1; }));
  char buf[2];
  EXPECT_EQ(::recv(client, buf, 2, MSG_WAITALL), 2);
  EXPECT_EQ(std::string(buf, 2), "yo");
  stream.Close();
  EXPECT_EQ(stream.fd(), -1);
  EXPECT_TRUE(loop.RunUntil([&] { return events.closed; }));
  // The stream closed the descriptor: the client sees the end.
  EXPECT_EQ(::recv(client, buf, 1, 0), 0);
  ::close(client);
}

TEST(TcpStreamAdoptTest, ClosedWithoutASocketTheOwnerStillHearsOfIt) {
  TestLoop loop;
  Events events;
  TcpStream stream(loop.context(), &events);
  ASSERT_EQ(stream.Init(), 0);
  stream.Close();
  EXPECT_FALSE(events.closed);  // after the call that closed it, as from libuv's callback
  EXPECT_TRUE(loop.RunUntil([&] { return events.closed; }));
}

TEST(TcpStreamConnectTest, ShutdownWhileConnectingSendsFinOnceConnected) {
  TestLoop loop;
  Events events;
  LoopbackListener listener;
  ASSERT_GE(listener.fd, 0);
  TcpStream stream(loop.context(), &events);
  ASSERT_EQ(stream.Init(), 0);
  ASSERT_EQ(stream.Connect(listener.address()), 0);
  stream.Write("early");
  stream.ShutdownWrite();
  EXPECT_TRUE(loop.RunUntil([&] { return events.connected && events.drained == 1; }));
  int peer = ::accept(listener.fd, nullptr, nullptr);
  ASSERT_GE(peer, 0);
  timeval bound{5, 0};  // a missing FIN fails the test instead of hanging it
  setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));
  std::string got;
  char buf[64];
  for (ssize_t n; (n = ::recv(peer, buf, sizeof(buf), 0)) > 0;) got.append(buf, n);
  EXPECT_EQ(got, "early");  // then the FIN ended the loop
  stream.Close();
  EXPECT_TRUE(loop.RunUntil([&] { return events.closed; }));
  ::close(peer);
}

TEST(TcpStreamConnectTest, RefusedConnectIsReportedAndClosable) {
  TestLoop loop;
  Events events;
  // A port that was just free: nothing listens there.
  absl::StatusOr<int> fd = BindListenSocket(*SocketAddress::Parse("127.0.0.1:0"), 1);
  ASSERT_TRUE(fd.ok());
  sockaddr_storage addr;
  socklen_t len = sizeof(addr);
  getsockname(*fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(*fd);
  TcpStream stream(loop.context(), &events);
  ASSERT_EQ(stream.Init(), 0);
  ASSERT_EQ(stream.Connect(reinterpret_cast<sockaddr*>(&addr)), 0);
  EXPECT_TRUE(loop.RunUntil([&] { return events.error != 0; }));
  EXPECT_EQ(events.error, UV_ECONNREFUSED);
  EXPECT_FALSE(events.connected);
  stream.Close();
  EXPECT_TRUE(loop.RunUntil([&] { return events.closed; }));
}

// TLS on both ends of loopback connections: a self-signed P-256 certificate made in memory, a
// client that verifies nothing (what is tested is the server stream's reading).
struct TlsContexts {
  SSL_CTX* server = SSL_CTX_new(TLS_server_method());
  SSL_CTX* client = SSL_CTX_new(TLS_client_method());
  TlsContexts() {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = SelfSignedCert(key, "localhost", {});
    SSL_CTX_use_certificate(server, cert);
    SSL_CTX_use_PrivateKey(server, key);
    SSL_CTX_set_verify(client, SSL_VERIFY_NONE, nullptr);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  ~TlsContexts() {
    SSL_CTX_free(server);
    SSL_CTX_free(client);
  }
};

// One TLS connection with both streams on the test loop.
struct TlsConnection {
  Events client_events, server_events;
  TcpStream client, server;
  TlsConnection(TestLoop* loop, const TlsContexts& tls, const LoopbackListener& listener)
      : client(loop->context(), &client_events), server(loop->context(), &server_events) {
    EXPECT_EQ(client.Init(), 0);
    SSL* ssl = SSL_new(tls.client);
    SSL_set_connect_state(ssl);
    client.StartTls(ssl);
    EXPECT_EQ(client.Connect(listener.address()), 0);
    pollfd ready{listener.fd, POLLIN, 0};
    EXPECT_EQ(::poll(&ready, 1, 5000), 1);
    int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(server.Init(), 0);
    ssl = SSL_new(tls.server);
    SSL_set_accept_state(ssl);
    server.StartTls(ssl);
    EXPECT_EQ(server.Adopt(fd), 0);
    EXPECT_EQ(server.StartReading(), 0);
  }
  bool up() const { return client_events.connected && server_events.established; }
  void Close(TestLoop* loop) {
    client.Close();
    server.Close();
    EXPECT_TRUE(loop->RunUntil([&] { return client_events.closed && server_events.closed; }));
  }
};

class TcpStreamTlsBudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(listener_.fd, 0);
    // Every read of a young server stream spends the whole budget: the second in an iteration
    // waits for the next one. Young for a minute: a slow run does not age the streams.
    loop_.context()->SetHandshakeBudget(absl::Nanoseconds(1));
    loop_.context()->SetYoungConnectionAge(absl::Minutes(1));
    a_ = std::make_unique<TlsConnection>(&loop_, tls_, listener_);
    b_ = std::make_unique<TlsConnection>(&loop_, tls_, listener_);
    ASSERT_TRUE(loop_.RunUntil([&] { return a_->up() && b_->up(); }));
  }
  void TearDown() override {
    a_->Close(&loop_);
    b_->Close(&loop_);
  }
  uint64_t waited() { return loop_.context()->handshakes_waited(); }
  // Sends what the clients wrote and waits (outside the loop) until both servers' sockets are
  // readable: the next poll reports both at once.
  // Both clients write; true once both servers read it.
  bool BothClientsWrite() {
    a_->client.Write("a");
    b_->client.Write("b");
    SendAndWaitForBothServers();
    return loop_.RunUntil(
        [&] { return a_->server_events.read == "a" && b_->server_events.read == "b"; });
  }
  void SendAndWaitForBothServers() {
    loop_.context()->RunDeferredNow();
    pollfd both[2] = {{a_->server.fd(), POLLIN, 0}, {b_->server.fd(), POLLIN, 0}};
    for (int i = 0; i < 500 && !(both[0].revents & POLLIN && both[1].revents & POLLIN); ++i) {
      ::poll(both, 2, 10);
    }
    ASSERT_TRUE(both[0].revents & POLLIN && both[1].revents & POLLIN);
  }

  TestLoop loop_;
  TlsContexts tls_;
  LoopbackListener listener_;
  std::unique_ptr<TlsConnection> a_, b_;
};

TEST_F(TcpStreamTlsBudgetTest, AYoungServerStreamsReadWaitsForTheBudget) {
  uint64_t before = waited();
  EXPECT_TRUE(BothClientsWrite());
  EXPECT_EQ(waited(), before + 1);  // one of them read in the iteration after
}

TEST_F(TcpStreamTlsBudgetTest, AnOwnerThatStopsReadingWhileTheReadWaitsIsObeyed) {
  uint64_t before = waited();
  a_->client.Write("a");
  b_->client.Write("b");
  SendAndWaitForBothServers();
  ASSERT_TRUE(loop_.RunUntil([&] { return waited() == before + 1; }));
  TlsConnection* waiting = a_->server_events.read.empty() ? a_.get() : b_.get();
  TlsConnection* other = waiting == a_.get() ? b_.get() : a_.get();
  ASSERT_TRUE(waiting->server_events.read.empty());
  waiting->server.StopReading();  // say, the connection's origin pushes back
  // Iterations go on (the other connection is served) and the budget has room again, but the
  // stream that waited does not read against its owner's word.
  std::string more = other->server_events.read + "c";
  other->client.Write("c");
  ASSERT_TRUE(loop_.RunUntil([&] { return other->server_events.read == more; }));
  EXPECT_TRUE(waiting->server_events.read.empty());
  ASSERT_EQ(waiting->server.StartReading(), 0);
  EXPECT_TRUE(loop_.RunUntil([&] { return !waiting->server_events.read.empty(); }));
  EXPECT_EQ(waiting->server_events.read, waiting == a_.get() ? "a" : "b");
}

TEST_F(TcpStreamTlsBudgetTest, AnOlderServerStreamReadsAtOnce) {
  loop_.context()->SetYoungConnectionAge(absl::ZeroDuration());
  uint64_t before = waited();
  EXPECT_TRUE(BothClientsWrite());
  EXPECT_EQ(waited(), before);
}

TEST_F(TcpStreamTlsBudgetTest, TheEndOfAYoungStreamWaitsItsTurnToo) {
  uint64_t before = waited();
  ASSERT_EQ(::shutdown(a_->client.fd(), SHUT_WR), 0);
  ASSERT_EQ(::shutdown(b_->client.fd(), SHUT_WR), 0);
  SendAndWaitForBothServers();
  EXPECT_TRUE(loop_.RunUntil([&] { return a_->server_events.eof && b_->server_events.eof; }));
  EXPECT_EQ(waited(), before + 1);
}

}  // namespace
}  // namespace sluice
