#include "common/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

// A datagram socket standing for systemd's notification socket, at `path` (abstract when it
// starts with '@').
int Listen(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  if (path[0] == '@') address.sun_path[0] = '\0';
  socklen_t size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), size), 0) << std::strerror(errno);
  return fd;
}

std::string Receive(int fd) {
  char buffer[512];
  ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

TEST(SystemdNotifyTest, SendsTheStateToTheSocketSystemdNames) {
  char dir[] = "/tmp/sluice-notify-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/notify";
  int fd = Listen(path);
  setenv("NOTIFY_SOCKET", path.c_str(), 1);
  EXPECT_TRUE(NotifyServiceManager("READY=1\nMAINPID=42"));
  EXPECT_EQ(Receive(fd), "READY=1\nMAINPID=42");
  close(fd);
  unlink(path.c_str());
  rmdir(dir);

  const std::string abstract = "@sluice-notify-test-" + std::to_string(getpid());
  fd = Listen(abstract);
  setenv("NOTIFY_SOCKET", abstract.c_str(), 1);
  EXPECT_TRUE(NotifyServiceManager("STOPPING=1"));
  EXPECT_EQ(Receive(fd), "STOPPING=1");
  close(fd);
  unsetenv("NOTIFY_SOCKET");
}

TEST(SystemdNotifyTest, WithoutSystemdNothingHappens) {
  unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(NotifyServiceManager("READY=1"));
  setenv("NOTIFY_SOCKET", "relative/path", 1);  // neither a path nor an abstract name
  EXPECT_FALSE(NotifyServiceManager("READY=1"));
  unsetenv("NOTIFY_SOCKET");
}

}  // namespace
}  // namespace sluice
