#include "proxy/net/socket_acceptor.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "gtest/gtest.h"
#include "proxy/net/listen_socket.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

struct Accepted : SocketAcceptor::Handler {
  std::vector<int> fds;
  std::vector<SocketAddress> peers;
  bool allow = true;
  int budget = -1;  // >= 0: that many more, then refusals
  int refused = 0;
  bool MayAccept() override {
    if (budget == 0) allow = false;
    if (!allow) {
      ++refused;
      return false;
    }
    if (budget > 0) --budget;
    return true;
  }
  void OnAccepted(int fd, const sockaddr* peer) override {
    fds.push_back(fd);
    peers.push_back(SocketAddress::FromSockaddr(peer));
  }
  std::vector<int> pauses;  // the errors accept4 paused for
  void OnAcceptPaused(int error) override { pauses.push_back(error); }
  ~Accepted() override {
    for (int fd : fds) ::close(fd);
  }
};

class SocketAcceptorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<int> fd = BindListenSocket(*SocketAddress::Parse("127.0.0.1:0"), 16);
    ASSERT_TRUE(fd.ok()) << fd.status();
    socklen_t len = sizeof(address_);
    getsockname(*fd, reinterpret_cast<sockaddr*>(&address_), &len);
    acceptor_ = new SocketAcceptor(loop_.context(), &accepted_, "test");
    ASSERT_EQ(acceptor_->Start(*fd, 256), 0);
  }
  void TearDown() override {
    acceptor_->CloseAndDelete();
    for (int fd : clients_) ::close(fd);
  }
  // A connected client (the kernel completes the handshake before anyone accepts).
  int Connect() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address_), sizeof(sockaddr_in)), 0);
    clients_.push_back(fd);
    return fd;
  }
  void RunOnce() { uv_run(loop_.loop(), UV_RUN_NOWAIT); }

  TestLoop loop_;
  Accepted accepted_;
  SocketAcceptor* acceptor_ = nullptr;
  sockaddr_storage address_{};
  std::vector<int> clients_;
};

TEST_F(SocketAcceptorTest, AcceptsWithThePeersAddress) {
  int client = Connect();
  ASSERT_TRUE(loop_.RunUntil([&] { return accepted_.fds.size() == 1; }));
  sockaddr_storage local;
  socklen_t len = sizeof(local);
  getsockname(client, reinterpret_cast<sockaddr*>(&local), &len);
  EXPECT_EQ(accepted_.peers[0], SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&local)));
  // Non-blocking and close-on-exec, ready for TcpStream::Adopt.
  EXPECT_TRUE(fcntl(accepted_.fds[0], F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(fcntl(accepted_.fds[0], F_GETFD) & FD_CLOEXEC);
}

TEST_F(SocketAcceptorTest, TakesABoundedBatchPerEvent) {
  const size_t n = SocketAcceptor::kAcceptsPerEvent + 36;
  for (size_t i = 0; i < n; ++i) Connect();
  ASSERT_TRUE(loop_.RunUntil([&] { return !accepted_.fds.empty(); }));
  EXPECT_EQ(accepted_.fds.size(), static_cast<size_t>(SocketAcceptor::kAcceptsPerEvent));
  EXPECT_TRUE(loop_.RunUntil([&] { return accepted_.fds.size() == n; }));
}

TEST_F(SocketAcceptorTest, ARefusalWaitsForResume) {
  accepted_.allow = false;
  Connect();
  Connect();
  ASSERT_TRUE(loop_.RunUntil([&] { return accepted_.refused > 0; }));
  loop_.RunUntil([] { return false; }, 50);
  EXPECT_EQ(accepted_.refused, 1);  // not asked again: the acceptor stopped watching
  EXPECT_TRUE(accepted_.fds.empty());
  accepted_.allow = true;
  acceptor_->Resume();
  EXPECT_EQ(accepted_.fds.size(), 2u);  // what waited, at once
  Connect();
  EXPECT_TRUE(loop_.RunUntil([&] { return accepted_.fds.size() == 3; }));  // watching again
}

TEST_F(SocketAcceptorTest, RefusedAgainWhileResumingItStillWaits) {
  accepted_.allow = false;
  for (int i = 0; i < 3; ++i) Connect();
  ASSERT_TRUE(loop_.RunUntil([&] { return accepted_.refused > 0; }));
  accepted_.allow = true;
  accepted_.budget = 1;
  acceptor_->Resume();  // one, then refused again
  EXPECT_EQ(accepted_.fds.size(), 1u);
  EXPECT_EQ(accepted_.refused, 2);
  loop_.RunUntil([] { return false; }, 50);
  EXPECT_EQ(accepted_.refused, 2);  // not watching: nobody asked again
  accepted_.allow = true;
  accepted_.budget = -1;
  acceptor_->Resume();
  EXPECT_EQ(accepted_.fds.size(), 3u);
}

// accept4 as when the process is out of descriptors, as many times as asked.
int failing_accepts = 0;
int AcceptOrRunOut(int fd, sockaddr* peer, socklen_t* len, int flags) {
  if (failing_accepts > 0) {
    --failing_accepts;
    errno = EMFILE;
    return -1;
  }
  return ::accept4(fd, peer, len, flags);
}

TEST_F(SocketAcceptorTest, OutOfDescriptorsPausesAndGoesOn) {
  // (Not by lowering RLIMIT_NOFILE: the sanitizers' own checks need descriptors too.)
  acceptor_->set_accept_for_testing(&AcceptOrRunOut);
  failing_accepts = 1;
  for (int i = 0; i < 3; ++i) Connect();
  ASSERT_TRUE(loop_.RunUntil([&] { return acceptor_->out_of_files() > 0; }));
  EXPECT_EQ(failing_accepts, 0);
  EXPECT_TRUE(accepted_.fds.empty());
  EXPECT_EQ(accepted_.pauses, std::vector<int>{EMFILE});  // the listener counts it
  // The connections waited in the kernel's queue; after the pause (100 ms) they are taken.
  EXPECT_TRUE(loop_.RunUntil([&] { return accepted_.fds.size() == 3; }));
  EXPECT_EQ(acceptor_->out_of_files(), 1u);
  EXPECT_EQ(accepted_.pauses.size(), 1u);
}

}  // namespace
}  // namespace sluice
