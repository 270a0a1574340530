// Fuzzes what sluice reads from etcd's gRPC API (proxy/fleet/etcd_grpc_protocol.h): the framed
// message stream of a watch or keep-alive stream fed in pieces, watch and keep-alive answers,
// and the trailers' status. The first byte picks the parser and the chunk size.
// Invariants: no crash, no sanitizer report; every refusal says why; a watch event always has
// its key; a keep-alive answer always names its lease; a message framed here reads back whole.
#include <cstdlib>
#include <string>

#include "proxy/fleet/etcd_grpc_protocol.h"

namespace {

void Check(const absl::Status& s) {
  if (!s.ok() && s.message().empty()) std::abort();
}

void Watch(std::string_view message) {
  absl::StatusOr<sluice::EtcdWatchMessage> m = sluice::ParseEtcdGrpcWatchResponse(message);
  Check(m.status());
  if (!m.ok()) return;
  for (const sluice::EtcdWatchEvent& e : m->events) {
    if (e.kv.key.empty()) std::abort();
  }
}

void KeepAlive(std::string_view message) {
  absl::StatusOr<sluice::EtcdLease> lease = sluice::ParseEtcdGrpcKeepAliveResponse(message);
  Check(lease.status());
  if (lease.ok() && (lease->id == 0 || lease->ttl_seconds < 0)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t selector = data[0];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (selector % 4) {
    case 0: {
      sluice::GrpcMessageReader reader;
      size_t chunk = 1 + selector / 4;
      for (size_t at = 0; at < text.size(); at += chunk) {
        absl::Status s = reader.Feed(text.substr(at, chunk), [](std::string_view m) {
          Watch(m);
          KeepAlive(m);
        });
        Check(s);
        if (!s.ok()) break;
      }
      break;
    }
    case 1:
      Watch(text);
      break;
    case 2: {
      KeepAlive(text);
      // Framing round trip.
      sluice::GrpcMessageReader reader;
      std::string framed = sluice::GrpcFrame(text);
      int messages = 0;
      absl::Status s = reader.Feed(framed, [&](std::string_view m) {
        if (m != text) std::abort();
        ++messages;
      });
      if (!s.ok() || messages != 1 || reader.partial()) std::abort();
      break;
    }
    default: {
      size_t colon = text.find(':');
      std::string_view code = text.substr(0, colon);
      std::string_view message = colon == std::string_view::npos ? "" : text.substr(colon + 1);
      Check(sluice::EtcdGrpcStatus(code, message));
      break;
    }
  }
  return 0;
}
