// Where one request goes, with steering configured (steering/decision.h): whether to believe its
// sluice-hop marker on the way in, the decision after the request filters (the route's cluster
// locally, a peer region's sluice through its tunnel, or a savior at once when nothing local can
// serve it: Isthmus), where it goes when a tunnel or the local region fails it, the signed hop
// marker it carries to a peer, and the sluice-region field on its response. It answers regions;
// the forwarder sends the attempts (proxy/forward/forwarder.h).
//
// One per request, inside its forwarder; loop thread only.
#ifndef SLUICE_PROXY_FORWARD_REQUEST_STEERING_H_
#define SLUICE_PROXY_FORWARD_REQUEST_STEERING_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/http_message.h"
#include "common/socket_address.h"
#include "filters/filter.h"
#include "proxy/event/loop_context.h"
#include "proxy/forward/steering_inputs.h"
#include "proxy/forward/worker_snapshot.h"

namespace sluice {

class RequestSteering {
 public:
  // `snapshot` outlives this object (the forwarder holds it).
  RequestSteering(LoopContext* context, const WorkerSnapshot* snapshot)
      : context_(context), snapshot_(snapshot) {}

  // The table for the whole request, read once from the snapshot (null: steering is off).
  void Start();
  bool on() const { return table_ != nullptr; }
  const SteeringTable* table() const { return table_.get(); }

  // --- On the way in ---
  // Whether to believe the request's sluice-hop marker, before its sluice-* fields are dropped.
  // A valid one: the request was tunneled in, and `client` (what the filters see) becomes the
  // real client its sender forwarded for. `peer`: the connection's, for the log.
  void CheckHopMarker(const RequestHead& request, const SocketAddress& peer, SocketAddress* client);
  bool tunneled_in() const { return tunneled_in_; }
  // The verified marker's sender and nonce (a peer's health poll is answered for them).
  std::string_view hop_from() const { return hop_from_; }
  uint64_t hop_nonce() const { return hop_nonce_; }
  // What cohort CIDR files are matched against (CohortClientAddress).
  void set_cohort_client(const SocketAddress& address) { cohort_client_ = address; }

  // --- After the request filters ---
  // The region of the first attempt, or -1 (local). Asks `context` to keep the body when the
  // request may have to move (a tunnel, or a failover).
  int Steer(const RequestHead& request, FilterContext* context, const ClusterRuntime& local);
  // The cluster that serves `region`: `local` (-1 or the local region), or the peer's tunnel.
  ClusterRuntime* ClusterFor(int region, ClusterRuntime* local) const;
  // The region the next attempt goes to (-1 or the local region: local).
  void Use(int region);
  // The region the current attempt tunnels to; -1: local.
  int peer_region() const { return peer_region_; }
  // Isthmus is on, and this request was neither tunneled in nor failed over yet.
  bool may_fail_over() const;

  // --- When an attempt fails ---
  // The current tunnel failed: the next savior, or the local region; -1 when none is left.
  int AfterTunnelFailed(const RequestHead& request);
  // A savior for the member when the local region failed it; -1 when none is reachable.
  int PickSavior() const;
  // The attempt through `savior` (PickSavior) is on its way.
  void FailedOver(const RequestHead& request, int savior);

  // --- On the way out ---
  // The signed sluice-hop marker, into `head` (as SerializeUpstreamRequest wrote it for
  // `host`) before the blank line that ends it.
  void AppendHopMarker(const RequestHead& request, std::string_view host, std::string* head);
  // sluice-region on a response: the peer's own (`peer_says`) when it came through a tunnel.
  void AddRegionHeader(ResponseHead& head, std::string_view peer_says) const;
  void AddRegionHeader(HeaderMap& headers) const;

  // --- For the metrics and the access log ---
  uint8_t decision_label() const { return decision_label_; }  // metrics.h DecisionLabel index
  int cohort() const { return member_.cohort; }
  // The region that served the request: the peer's, or the local one. Steering on only.
  int serving_region() const { return peer_region_ >= 0 ? peer_region_ : table_->local(); }

 private:
  uint64_t UnreachableRegions() const;
  SteeringStats* stats() const {
    return snapshot_->metrics ? &snapshot_->metrics->steering : nullptr;
  }

  LoopContext* context_;
  const WorkerSnapshot* snapshot_;
  SteeringTablePtr table_;
  uint8_t decision_label_ = kDecisionOff;
  MemberRequest member_;
  MemberIdBuffer member_buffer_;
  SocketAddress cohort_client_;
  int peer_region_ = -1;         // the region the current attempt tunnels to; -1: local
  uint64_t failed_regions_ = 0;  // regions whose tunnel failed this request
  bool tunneled_in_ = false;     // a verified hop marker: served here, never tunneled again
  bool failed_over_ = false;     // the Isthmus attempt was made
  std::string hop_from_;         // tunneled in: the sending region, and its marker's nonce
  uint64_t hop_nonce_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_FORWARD_REQUEST_STEERING_H_
