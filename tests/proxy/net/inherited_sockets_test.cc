#include "proxy/net/inherited_sockets.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "gtest/gtest.h"
#include "proxy/net/listen_socket.h"

namespace sluice {
namespace {

std::string AddressOf(int fd) {
  sockaddr_storage addr;
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&addr)).ToString();
}

TEST(InheritedSocketsTest, EncodeAndParseAreInverse) {
  InheritedSockets::Map sockets{
      {"127.0.0.1:8080", {3, 4}}, {"[::1]:8443", {5}}, {AdminSocketKey("127.0.0.1:9901"), {6}}};
  std::string text = InheritedSockets::Encode(sockets);
  EXPECT_EQ(text, "127.0.0.1:8080=3,4;[::1]:8443=5;admin 127.0.0.1:9901=6");
  absl::StatusOr<InheritedSockets::Map> parsed = InheritedSockets::Parse(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, sockets);
}

TEST(InheritedSocketsTest, BadTextIsRefusedWithTheEntry) {
  for (const char* bad : {"127.0.0.1:8080", "=3", "127.0.0.1:8080=x", "127.0.0.1:8080=2",
                          "127.0.0.1:8080=3,", "a=3;a=4"}) {
    absl::StatusOr<InheritedSockets::Map> parsed = InheritedSockets::Parse(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_NE(std::string(parsed.status().message()).find("SLUICE_INHERITED_SOCKETS"),
                std::string::npos);
    }
  }
  EXPECT_TRUE(InheritedSockets::Parse("")->empty());
}

TEST(InheritedSocketsTest, OnlyListeningSocketsBoundWhereListedAreAdopted) {
  absl::StatusOr<int> listening = BindListenSocket(*SocketAddress::Parse("127.0.0.1:0"), 16);
  ASSERT_TRUE(listening.ok()) << listening.status();
  const std::string address = AddressOf(*listening);
  // A socket that does not listen, and a pipe: refused, naming the descriptor.
  int idle = socket(AF_INET, SOCK_STREAM, 0);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  auto refused = InheritedSockets::Adopt({{address, {idle}}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("is not listening"), std::string::npos);
  refused = InheritedSockets::Adopt({{address, {pipe_fds[0]}}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("not a TCP socket"), std::string::npos);
  refused = InheritedSockets::Adopt({{"127.0.0.1:1", {*listening}}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("is bound to " + address),
            std::string::npos);
  close(idle);
  close(pipe_fds[0]);
  close(pipe_fds[1]);

  // The right one: adopted, close-on-exec again, and taken once.
  fcntl(*listening, F_SETFD, 0);
  auto adopted = InheritedSockets::Adopt({{address, {*listening}}});
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  EXPECT_EQ(fcntl(*listening, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(adopted->Take(address), std::vector<int>{*listening});
  EXPECT_TRUE(adopted->Take(address).empty());
  close(*listening);
}

TEST(InheritedSocketsTest, AListenerOnPortZeroKeepsThePortItGot) {
  absl::StatusOr<int> fd = BindListenSocket(*SocketAddress::Parse("127.0.0.1:0"), 16);
  ASSERT_TRUE(fd.ok());
  auto adopted = InheritedSockets::Adopt({{"127.0.0.1:0", {*fd}}});
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  EXPECT_EQ(adopted->Take("127.0.0.1:0"), std::vector<int>{*fd});
  EXPECT_FALSE(InheritedSockets::Adopt({{"127.0.0.2:0", {*fd}}}).ok());  // another address
  close(*fd);
}

TEST(InheritedSocketsTest, WhatNobodyTakesIsClosed) {
  absl::StatusOr<int> fd = BindListenSocket(*SocketAddress::Parse("127.0.0.1:0"), 16);
  ASSERT_TRUE(fd.ok());
  {
    auto adopted = InheritedSockets::Adopt({{AddressOf(*fd), {*fd}}});
    ASSERT_TRUE(adopted.ok());
  }  // not taken: closed with the set
  EXPECT_EQ(fcntl(*fd, F_GETFD), -1);
}

TEST(InheritedSocketsTest, TheEnvironmentVariableIsReadOnce) {
  absl::StatusOr<int> fd = BindListenSocket(*SocketAddress::Parse("127.0.0.1:0"), 16);
  ASSERT_TRUE(fd.ok());
  const std::string address = AddressOf(*fd);
  setenv(kInheritedSocketsVariable, (address + "=" + std::to_string(*fd)).c_str(), 1);
  auto inherited = InheritedSockets::FromEnvironment();
  ASSERT_TRUE(inherited.ok()) << inherited.status();
  EXPECT_EQ(std::getenv(kInheritedSocketsVariable), nullptr);  // not passed on by accident
  EXPECT_EQ(inherited->Take(address), std::vector<int>{*fd});
  close(*fd);
  setenv(kInheritedSocketsVariable, "127.0.0.1:1=999999", 1);
  EXPECT_FALSE(InheritedSockets::FromEnvironment().ok());
  unsetenv(kInheritedSocketsVariable);
}

}  // namespace
}  // namespace sluice
