#include "proxy/net/tcp_stream.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "proxy/net/listen_socket.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

struct Events : TcpStream::Handler {
  std::string read;
  bool eof = false;
  int error = 0;
  int drained = 0;
  bool connected = false;
  bool closed = false;
  void OnStreamRead(const char* data, size_t len) override { read.append(data, len); }
  void OnStreamEof() override { eof = true; }
  void OnStreamError(int e) override { error = e; }
  void OnStreamDrained() override { ++drained; }
  void OnStreamConnected() override { connected = true; }
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

}  // namespace
}  // namespace sluice
