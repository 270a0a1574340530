#include "bench/drill_resolver.h"

#include <ldns/ldns.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace sluice_drill {

namespace {

constexpr uint64_t kAttemptTimeoutMs = 1000;
constexpr int kAttempts = 2;                              // the first query and one retry
constexpr uint64_t kRetryAfterFailureNs = 1000000000ULL;  // no new lookup sooner after a failure
constexpr uint64_t kEmptyAnswerTtlS = 1;  // an empty answer without an SOA to say how long

bool SameAddress(const sockaddr* a, const sockaddr_storage& b) {
  if (a == nullptr || a->sa_family != b.ss_family) return false;
  if (a->sa_family == AF_INET) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(a);
    const auto* y = reinterpret_cast<const sockaddr_in*>(&b);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const auto* x = reinterpret_cast<const sockaddr_in6*>(a);
    const auto* y = reinterpret_cast<const sockaddr_in6*>(&b);
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
  }
  return false;
}

// Whether `answer` answers the question of ours: a response with our ID and one question,
// `name` A IN. Anything else on the socket is somebody else's (or late) and is ignored.
bool Matches(const ldns_pkt* answer, uint16_t id, const ldns_rdf* name) {
  if (!ldns_pkt_qr(answer) || ldns_pkt_id(answer) != id) return false;
  const ldns_rr_list* question = ldns_pkt_question(answer);
  if (question == nullptr || ldns_rr_list_rr_count(question) != 1) return false;
  const ldns_rr* q = ldns_rr_list_rr(question, 0);
  return ldns_rr_get_type(q) == LDNS_RR_TYPE_A && ldns_rr_get_class(q) == LDNS_RR_CLASS_IN &&
         ldns_dname_compare(ldns_rr_owner(q), name) == 0;
}

// The negative TTL of an empty answer (RFC 2308: the smaller of the SOA's TTL and its
// MINIMUM field), or kEmptyAnswerTtlS when the authority section has no SOA.
uint64_t NegativeTtlS(const ldns_pkt* answer) {
  const ldns_rr_list* authority = ldns_pkt_authority(answer);
  for (size_t i = 0; authority != nullptr && i < ldns_rr_list_rr_count(authority); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(authority, i);
    if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA || ldns_rr_rd_count(rr) < 7) continue;
    return std::min<uint64_t>(ldns_rr_ttl(rr), ldns_rdf2native_int32(ldns_rr_rdf(rr, 6)));
  }
  return kEmptyAnswerTtlS;
}

}  // namespace

bool DnsCache::QueryDue(uint64_t now) const {
  if (answered_ && now < answered_ns_ + ttl_ns_) return false;  // fresh
  if (failed_ && now < failed_ns_ + retry_ns_) return false;
  return true;
}

DnsCache::State DnsCache::Lookup(uint64_t now, bool query_in_flight) const {
  if (answered_ && now < answered_ns_ + ttl_ns_ + grace_ns_) return State::kUsable;
  return query_in_flight ? State::kWaiting : State::kFailed;
}

void DnsCache::Answered(uint64_t now, std::vector<in_addr> addresses, uint64_t ttl_ns) {
  answered_ = true;
  answered_ns_ = now;
  ttl_ns_ = ttl_ns;
  addresses_ = std::move(addresses);
  failed_ = false;
}

void DnsCache::Failed(uint64_t now) {
  failed_ = true;
  failed_ns_ = now;
}

// libuv's callbacks, trampolines to the resolver's members.
struct ResolverCallbacks {
  static void Alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    auto* self = static_cast<StubResolver*>(handle->data);
    *buf = uv_buf_init(reinterpret_cast<char*>(self->buffer_), sizeof(self->buffer_));
  }

  static void Read(uv_udp_t* udp, ssize_t nread, const uv_buf_t* buf, const sockaddr* from,
                   unsigned flags) {
    // nread 0 with no address: nothing more to read now. A receive error is not the
    // server's answer; the attempt's timer decides.
    if (nread <= 0) return;
    static_cast<StubResolver*>(udp->data)->OnDatagram(reinterpret_cast<const uint8_t*>(buf->base),
                                                      static_cast<size_t>(nread), from, flags);
  }

  static void Timeout(uv_timer_t* timer) { static_cast<StubResolver*>(timer->data)->OnTimeout(); }
};

StubResolver::StubResolver(uv_loop_t* loop, const sockaddr_storage& server, std::string name,
                           uint64_t grace_ns, uint64_t seed)
    : loop_(loop),
      server_(server),
      name_(std::move(name)),
      cache_(grace_ns, kRetryAfterFailureNs),
      random_(seed * 0x9E3779B97F4A7C15ULL + 7) {
  if (name_.empty() || name_.back() != '.') name_ += '.';
  uv_udp_init(loop_, &udp_);
  udp_.data = this;
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  open_ = true;
  // Bound to the server's family (libuv's implicit bind is IPv4 only).
  sockaddr_storage any{};
  if (server_.ss_family == AF_INET6) {
    uv_ip6_addr("::", 0, reinterpret_cast<sockaddr_in6*>(&any));
  } else {
    uv_ip4_addr("0.0.0.0", 0, reinterpret_cast<sockaddr_in*>(&any));
  }
  int rc = uv_udp_bind(&udp_, reinterpret_cast<const sockaddr*>(&any), 0);
  if (rc == 0) rc = uv_udp_recv_start(&udp_, &ResolverCallbacks::Alloc, &ResolverCallbacks::Read);
  if (rc != 0) socket_error_ = std::string("udp socket: ") + uv_strerror(rc);
}

bool StubResolver::ValidName(const std::string& name) {
  ldns_rdf* dname = ldns_dname_new_frm_str(name.c_str());
  ldns_rdf_deep_free(dname);
  return !name.empty() && dname != nullptr;
}

DnsCache::State StubResolver::Resolve(uint64_t now) {
  if (open_ && !in_flight_ && cache_.QueryDue(now)) {
    ++lookups_;
    in_flight_ = true;
    attempt_ = 1;
    send_error_.clear();
    Send();
  }
  return cache_.Lookup(now, in_flight_);
}

void StubResolver::Close() {
  if (!open_) return;
  open_ = false;
  in_flight_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&udp_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

uint16_t StubResolver::NextId() {  // splitmix64
  uint64_t z = (random_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return static_cast<uint16_t>(z ^ (z >> 31));
}

// One attempt: a new ID, the query on the wire, the attempt's timer. A send that fails is an
// attempt that gets no answer: the timer retries or fails the lookup.
void StubResolver::Send() {
  id_ = NextId();
  uv_timer_start(&timer_, &ResolverCallbacks::Timeout, kAttemptTimeoutMs, 0);
  ldns_rdf* qname = ldns_dname_new_frm_str(name_.c_str());
  if (qname == nullptr) {
    Fail("not a domain name: " + name_);
    return;
  }
  ldns_pkt* query = ldns_pkt_query_new(qname, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD);
  ldns_pkt_set_id(query, id_);
  uint8_t* wire = nullptr;
  size_t size = 0;
  ldns_status status = ldns_pkt2wire(&wire, query, &size);
  ldns_pkt_free(query);
  if (status != LDNS_STATUS_OK) {
    Fail(std::string("query: ") + ldns_get_errorstr_by_id(status));
    return;
  }
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(wire), static_cast<unsigned>(size));
  int rc = uv_udp_try_send(&udp_, &buf, 1, reinterpret_cast<const sockaddr*>(&server_));
  free(wire);
  if (rc < 0) send_error_ = std::string("send: ") + uv_strerror(rc);
}

void StubResolver::OnTimeout() {
  if (!in_flight_) return;
  if (attempt_ < kAttempts) {
    ++attempt_;
    Send();
    return;
  }
  if (!socket_error_.empty()) {
    Fail(socket_error_);
  } else {
    Fail(send_error_.empty() ? "no answer within 2 x 1 s" : send_error_);
  }
}

void StubResolver::Fail(const std::string& why) {
  last_error_ = why;
  ++failures_;
  in_flight_ = false;
  uv_timer_stop(&timer_);
  cache_.Failed(uv_hrtime());
}

void StubResolver::OnDatagram(const uint8_t* data, size_t length, const sockaddr* from,
                              unsigned flags) {
  if (!in_flight_ || !SameAddress(from, server_)) return;
  ldns_pkt* answer = nullptr;
  if (ldns_wire2pkt(&answer, data, length) != LDNS_STATUS_OK) return;  // not DNS: ignored
  ldns_rdf* qname = ldns_dname_new_frm_str(name_.c_str());
  bool ours = qname != nullptr && Matches(answer, id_, qname);
  ldns_rdf_deep_free(qname);
  if (!ours) {
    ldns_pkt_free(answer);
    return;
  }
  ldns_pkt_rcode rcode = ldns_pkt_get_rcode(answer);
  if ((flags & UV_UDP_PARTIAL) != 0 || ldns_pkt_tc(answer)) {
    Fail("truncated answer");
  } else if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN) {
    const ldns_lookup_table* known = ldns_lookup_by_id(ldns_rcodes, rcode);
    Fail(std::string("answer with rcode ") + (known ? known->name : std::to_string(rcode)));
  } else {
    std::vector<in_addr> addresses;
    uint64_t ttl_s = UINT32_MAX;
    const ldns_rr_list* records = ldns_pkt_answer(answer);
    for (size_t i = 0; records != nullptr && i < ldns_rr_list_rr_count(records); ++i) {
      const ldns_rr* rr = ldns_rr_list_rr(records, i);
      ttl_s = std::min<uint64_t>(ttl_s, ldns_rr_ttl(rr));  // CNAMEs on the way count too
      const ldns_rdf* rdata = ldns_rr_rd_count(rr) > 0 ? ldns_rr_rdf(rr, 0) : nullptr;
      if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_A || rdata == nullptr ||
          ldns_rdf_size(rdata) != sizeof(in_addr)) {
        continue;
      }
      in_addr a;
      memcpy(&a, ldns_rdf_data(rdata), sizeof(a));
      addresses.push_back(a);
    }
    if (addresses.empty()) ttl_s = NegativeTtlS(answer);
    in_flight_ = false;
    uv_timer_stop(&timer_);
    cache_.Answered(uv_hrtime(), std::move(addresses), ttl_s * 1000000000ULL);
  }
  ldns_pkt_free(answer);
}

}  // namespace sluice_drill
