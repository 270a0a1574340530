#include "proxy/net/listen_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace sluice {
namespace {

int PortOf(int fd) {
  sockaddr_storage addr;
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&addr)).port();
}

TEST(ListenSocketTest, SeveralWorkersShareOneAddress) {
  absl::StatusOr<int> first = BindListenSocket(*SocketAddress::Parse("127.0.0.1:0"), 16);
  ASSERT_TRUE(first.ok()) << first.status();
  int port = PortOf(*first);
  auto address = SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  absl::StatusOr<int> second = BindListenSocket(*address, 16);
  EXPECT_TRUE(second.ok()) << second.status();  // SO_REUSEPORT
  if (second.ok()) ::close(*second);
  ::close(*first);
}

TEST(ListenSocketTest, BusyAddressIsAClearError) {
  int plain = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(plain, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(plain, 1), 0);  // no SO_REUSEPORT: nobody may share it
  int port = PortOf(plain);
  absl::StatusOr<int> fd =
      BindListenSocket(*SocketAddress::Parse("127.0.0.1:" + std::to_string(port)), 16);
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(std::string(fd.status().message()).find("cannot listen on 127.0.0.1:"),
            std::string::npos)
      << fd.status();
  ::close(plain);
}

TEST(ListenSocketTest, ASharedPortIsNotFreeAndAnExclusiveOneIsNotShared) {
  absl::StatusOr<int> first = BindListenSocket(*SocketAddress::Parse("127.0.0.1:0"), 16);
  ASSERT_TRUE(first.ok()) << first.status();
  auto address = *SocketAddress::Parse("127.0.0.1:" + std::to_string(PortOf(*first)));
  // Another sluice would see this port taken, though its workers could share it.
  absl::Status free = CheckPortFree(address);
  EXPECT_FALSE(free.ok());
  EXPECT_NE(std::string(free.message()).find("a second sluice?"), std::string::npos) << free;
  ::close(*first);
  EXPECT_TRUE(CheckPortFree(address).ok());

  absl::StatusOr<int> admin =
      BindListenSocket(*SocketAddress::Parse("127.0.0.1:0"), 16, PortSharing::kExclusive);
  ASSERT_TRUE(admin.ok()) << admin.status();
  auto admin_address = *SocketAddress::Parse("127.0.0.1:" + std::to_string(PortOf(*admin)));
  absl::StatusOr<int> second = BindListenSocket(admin_address, 16);  // even with SO_REUSEPORT
  EXPECT_FALSE(second.ok());
  if (second.ok()) ::close(*second);
  ::close(*admin);
}

TEST(ListenSocketTest, Ipv6Loopback) {
  absl::StatusOr<int> fd = BindListenSocket(*SocketAddress::Parse("[::1]:0"), 16);
  if (!fd.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << fd.status();
  ::close(*fd);
}

}  // namespace
}  // namespace sluice
