#include "proxy/forward/request_steering.h"

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/strings.h"

namespace sluice {
namespace {

// What a hop marker binds, read from the request as SerializeUpstreamRequest writes it (the
// sender) or as it arrived (the receiver): the same either way.
struct HopBinding {
  std::string forwarded_for;
  char length[24];
  HopRequest request;
};

void Bind(const RequestHead& head, std::string_view default_host, HopBinding* out) {
  HopRequest& r = out->request;
  r.method = head.method_text;
  r.path = head.path.empty() ? std::string_view("/") : std::string_view(head.path);
  r.query = head.query;
  if (!r.query.empty() && r.query.front() == '?') r.query.remove_prefix(1);
  // The Host field as written (a header rule may have set it), else what the serializer adds.
  if (std::optional<std::string_view> host = head.headers.GetKind(HeaderKind::kHost)) {
    r.authority = *host;
  } else {
    r.authority = head.authority.empty() ? default_host : std::string_view(head.authority);
  }
  for (size_t i = 0; i < head.headers.size(); ++i) {
    if (head.headers.kind(i) != HeaderKind::kXForwardedFor) continue;
    if (!out->forwarded_for.empty()) out->forwarded_for.append(", ");
    out->forwarded_for.append(head.headers.value(i));
  }
  r.forwarded_for = out->forwarded_for;
  switch (head.framing) {
    case BodyFraming::kContentLength: {
      int n = absl::SNPrintF(out->length, sizeof(out->length), "%d", head.content_length);
      r.body = std::string_view(out->length, static_cast<size_t>(n));
      break;
    }
    case BodyFraming::kChunked:
      r.body = "chunked";
      break;
    default:
      r.body = "-";
      break;
  }
}

}  // namespace

void RequestSteering::Start() {
  table_ = snapshot_->steering;
  decision_label_ = table_ ? static_cast<uint8_t>(SteeringReason::kLocal) : kDecisionOff;
}

void RequestSteering::CheckHopMarker(const RequestHead& request, const SocketAddress& peer,
                                     SocketAddress* client) {
  std::string_view value;
  int count = 0;
  for (size_t i = 0; i < request.headers.size(); ++i) {
    if (EqualsIgnoreCase(request.headers.name(i), kHopHeader)) {
      value = request.headers.value(i);
      ++count;
    }
  }
  if (count == 0) return;
  // The field itself goes with every other sluice-* field when the request is prepared for
  // upstream; here only whether to believe it.
  const SteeringConfig& config = snapshot_->config->steering;
  const SteeringTable& table = *table_;
  HopVerdict verdict = HopVerdict::kMalformed;
  HopMarker marker;
  if (count == 1 && !config.signer->empty()) {
    HopBinding binding;
    Bind(request, "", &binding);
    const int64_t now = context_->clock().UnixSeconds();
    verdict = config.signer->Verify(value, table.region(table.local()).name, now,
                                    config.max_skew_seconds, binding.request, &marker);
    if (verdict == HopVerdict::kValid) {
      int from = table.FindRegion(marker.from);
      if (from < 0 || from == table.local()) verdict = HopVerdict::kUnknownFrom;
    }
    // Last: only a marker that verified may take a place in the replay cache.
    if (verdict == HopVerdict::kValid &&
        !snapshot_->hop_replay->FirstUse(marker.nonce, marker.timestamp, now,
                                         config.max_skew_seconds)) {
      verdict = HopVerdict::kReplayed;
    }
  }
  SteeringStats* stats = this->stats();
  if (verdict == HopVerdict::kValid) {
    tunneled_in_ = true;
    hop_from_ = marker.from;
    hop_nonce_ = marker.nonce;
    decision_label_ = static_cast<uint8_t>(SteeringReason::kTunneledIn);
    if (stats) ++stats->tunneled_in;
    // Filters (rate limits by client address, say) see the real client, not the peer sluice.
    SocketAddress real;
    if (TunneledClient(request.headers, &real)) *client = real;
    return;
  }
  if (stats) ++stats->hop_rejected[static_cast<int>(verdict)];
  LOG_DEBUG("downstream %s: sluice-hop marker ignored (%s)", peer.ToString(),
            HopVerdictName(verdict));
}

uint64_t RequestSteering::UnreachableRegions() const {
  // A peer region whose tunnel endpoints are all ejected cannot take anyone just now.
  uint64_t mask = failed_regions_;
  const std::vector<int>& tunnels = snapshot_->config->steering.tunnel_cluster;
  const int64_t now = context_->clock().MonotonicNanos();
  for (size_t r = 0; r < tunnels.size(); ++r) {
    if (tunnels[r] >= 0 &&
        !snapshot_->clusters[static_cast<size_t>(tunnels[r])]->balancer.AnyAvailable(now)) {
      mask |= RegionBit(static_cast<int>(r));
    }
  }
  return mask;
}

int RequestSteering::Steer(const RequestHead& request, FilterContext* context,
                           const ClusterRuntime& local) {
  const SteeringConfig& config = snapshot_->config->steering;
  const SteeringTable& table = *table_;
  SteeringStats* stats = this->stats();
  const RequestClient client{context->client, cohort_client_, context->trusted_headers};
  ReadSteeringInputs(config, table, snapshot_->cohort_maps, request, context->identity, client,
                     &member_buffer_, &member_);
  member_.tunneled_in = tunneled_in_;
  member_.unreachable = UnreachableRegions();
  SteeringDecision decision = Decide(table, member_);
  decision_label_ = static_cast<uint8_t>(decision.reason);
  if (!decision.tunnel && !tunneled_in_ && config.failover &&
      !local.balancer.AnyAvailable(context_->clock().MonotonicNanos())) {
    // Isthmus before the first attempt: nothing local can serve it.
    int savior = PickFailoverRegion(table, member_.member, member_.cohort, member_.unreachable);
    if (savior >= 0) {
      decision = SteeringDecision{savior, true, SteeringReason::kFailover};
      decision_label_ = static_cast<uint8_t>(SteeringReason::kFailover);
      failed_over_ = true;
      if (stats) ++stats->failovers;
      LOG_DEBUG("%s %s%s: no endpoint of cluster %s is available; to %s", request.method_text,
                request.authority, request.path, local.config.name, table.region(savior).name);
    }
  }
  if (decision.tunnel) {
    if (stats) ++stats->tunneled_out[decision.region];
    LOG_DEBUG("%s %s%s: to %s (%s)", request.method_text, request.authority, request.path,
              table.region(decision.region).name, SteeringReasonName(decision.reason));
  } else if (stats) {
    ++stats->served_local;
  }
  // Keep the body so a tunnel that fails, or a local attempt that fails, can be sent again.
  const bool may_move = decision.tunnel || (config.failover && !tunneled_in_);
  if (may_move && request.idempotent() && !context->keep_request_body) {
    context->keep_request_body = true;
    context->replay_limit = config.replay_buffer;
  }
  return decision.tunnel ? decision.region : -1;
}

ClusterRuntime* RequestSteering::ClusterFor(int region, ClusterRuntime* local) const {
  if (region < 0 || region == table_->local()) return local;
  int index = snapshot_->config->steering.tunnel_cluster[static_cast<size_t>(region)];
  return snapshot_->clusters[static_cast<size_t>(index)].get();
}

void RequestSteering::Use(int region) {
  peer_region_ = region >= 0 && region != table_->local() ? region : -1;
}

bool RequestSteering::may_fail_over() const {
  return table_ && snapshot_->config->steering.failover && !tunneled_in_ && !failed_over_;
}

int RequestSteering::AfterTunnelFailed(const RequestHead& request) {
  const SteeringTable& table = *table_;
  const int failed = peer_region_;
  failed_regions_ |= RegionBit(failed);
  int next;
  if (failed_over_) {
    // The local region already failed this request: only another savior will do.
    next = PickFailoverRegion(table, member_.member, member_.cohort, UnreachableRegions());
    if (next < 0) return -1;
  } else {
    member_.unreachable = UnreachableRegions();
    next = Decide(table, member_).region;  // the next savior, or local
  }
  if (snapshot_->metrics) ++snapshot_->metrics->steering.fallbacks;
  LOG_DEBUG("%s %s%s: tunnel to %s failed; %s instead", request.method_text, request.authority,
            request.path, table.region(failed).name,
            next == table.local() ? "local" : table.region(next).name);
  return next;
}

int RequestSteering::PickSavior() const {
  return PickFailoverRegion(*table_, member_.member, member_.cohort, UnreachableRegions());
}

void RequestSteering::FailedOver(const RequestHead& request, int savior) {
  failed_over_ = true;
  decision_label_ = static_cast<uint8_t>(SteeringReason::kFailover);
  if (snapshot_->metrics) ++snapshot_->metrics->steering.failovers;
  LOG_DEBUG("%s %s%s: the local region failed it; once more through %s", request.method_text,
            request.authority, request.path, table_->region(savior).name);
}

void RequestSteering::AppendHopMarker(const RequestHead& request, std::string_view host,
                                      std::string* head) {
  const Config& config = *snapshot_->config;
  const SteeringTable& table = *table_;
  std::string_view id = "-";
  if (!config.proxy.request_id_header.empty()) {
    id = request.headers.Get(config.proxy.request_id_header).value_or("-");
  }
  HopBinding binding;
  Bind(request, host, &binding);  // the Host SerializeUpstreamRequest wrote
  std::string marker = config.steering.signer->Sign(
      table.region(table.local()).name, table.region(peer_region_).name,
      context_->clock().UnixSeconds(), context_->Random(), id, binding.request);
  // Into the head, before the blank line that ends it.
  head->resize(head->size() - 2);
  head->append(kHopHeader).append(": ").append(marker).append("\r\n\r\n");
}

void RequestSteering::AddRegionHeader(ResponseHead& head, std::string_view peer_says) const {
  const SteeringTable& table = *table_;
  std::string_view region = table.region(table.local()).name;
  if (peer_region_ >= 0) {
    region = ValidRegionName(peer_says) ? peer_says : table.region(peer_region_).name;
  }
  head.headers.Add("sluice-region", region);
}

void RequestSteering::AddRegionHeader(HeaderMap& headers) const {
  headers.Add("sluice-region", table_->region(table_->local()).name);
}

}  // namespace sluice
