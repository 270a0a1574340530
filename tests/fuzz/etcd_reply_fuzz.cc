// Fuzzes what sluice reads from etcd (proxy/fleet/etcd_protocol.h) and from the other nodes through
// it (steering/fleet_view.h): unary replies, a watch stream fed in pieces, and node views.
// The first byte picks the parser; for the watch stream it also sets the chunk size.
// Invariants: no crash, no sanitizer report; every refusal says why; a node view that decodes
// encodes to a view that decodes to the same encoding.
#include <cstdlib>
#include <string>

#include "proxy/fleet/etcd_protocol.h"
#include "steering/fleet_view.h"

namespace {

void Check(const absl::Status& s) {
  if (!s.ok() && s.message().empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t selector = data[0];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (selector % 8) {
    case 0:
      Check(sluice::ParseEtcdRangeReply(text).status());
      break;
    case 1:
      Check(sluice::ParseEtcdTxnReply(text).status());
      break;
    case 2:
      Check(sluice::ParseEtcdKeepAliveReply(text).status());
      Check(sluice::ParseEtcdLeaseGrantReply(text).status());
      break;
    case 3:
      Check(sluice::EtcdErrorStatus(400 + selector, text));
      Check(sluice::ParseEtcdAuthReply(text).status());
      Check(sluice::ParseEtcdPutReply(text).status());
      break;
    case 4:
    case 5: {
      sluice::EtcdWatchDecoder decoder;
      size_t chunk = 1 + selector / 8;
      for (size_t at = 0; at < text.size(); at += chunk) {
        absl::Status s =
            decoder.Feed(text.substr(at, chunk), [](const sluice::EtcdWatchMessage& m) {
              for (const sluice::EtcdWatchEvent& e : m.events) {
                if (e.kv.key.empty()) std::abort();  // a key-value always has its key
              }
            });
        Check(s);
        if (!s.ok()) break;
      }
      break;
    }
    default: {
      absl::StatusOr<sluice::NodeView> view = sluice::DecodeNodeView(text);
      Check(view.status());
      if (!view.ok()) break;
      std::string encoded = sluice::EncodeNodeView(*view);
      absl::StatusOr<sluice::NodeView> again = sluice::DecodeNodeView(encoded);
      if (!again.ok() || sluice::EncodeNodeView(*again) != encoded) std::abort();
      std::vector<sluice::NodeView> views = {*view, *again};
      (void)sluice::FleetRegionHealth(views, view->region, 20);
      break;
    }
  }
  return 0;
}
