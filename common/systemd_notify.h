// The service manager's readiness protocol (sd_notify(3)), without libsystemd: when systemd
// starts sluice as a Type=notify service it sets NOTIFY_SOCKET, and sluice sends "READY=1"
// once it serves, "RELOADING=1" around a reload, "STOPPING=1" when it drains, and after a
// binary upgrade "MAINPID=<pid>" from the new process so systemd follows it. Outside systemd
// (no NOTIFY_SOCKET) every call does nothing.
#ifndef SLUICE_COMMON_SYSTEMD_NOTIFY_H_
#define SLUICE_COMMON_SYSTEMD_NOTIFY_H_

#include <string>

namespace sluice {

// Sends `state` ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET. False when it is not set or the
// datagram could not be sent (nothing else happens: the protocol is best effort).
bool NotifyServiceManager(const std::string& state);

}  // namespace sluice

#endif  // SLUICE_COMMON_SYSTEMD_NOTIFY_H_
