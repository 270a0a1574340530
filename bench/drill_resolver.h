// The drill's clients find the edge through DNS (sluice_drill_load --dns): a stub resolver with
// a cache for one name, A records only, asking one server over UDP on the load's libuv loop.
//
// DnsCache decides (times passed in, no I/O); StubResolver sends the queries and feeds it.
// Everything runs on the loop's thread.
#pragma once

#include <netinet/in.h>
#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sluice_drill {

// What the clients may connect to at a time `now` (uv_hrtime nanoseconds), like a stub
// resolver's cache: an answer is fresh for its TTL (the smallest of its records; the SOA's
// negative TTL for an empty one). After that a new query is due; until it succeeds the old
// answer is still used, up to `grace_ns` past its TTL, and then nothing is. A failed query is
// not repeated for `retry_ns`.
class DnsCache {
 public:
  enum class State {
    kUsable,   // addresses() is what to use (it may be empty: the name has no A records)
    kWaiting,  // no usable answer yet, a query is on its way
    kFailed,   // no usable answer, and the last query failed
  };

  DnsCache(uint64_t grace_ns, uint64_t retry_ns) : grace_ns_(grace_ns), retry_ns_(retry_ns) {}

  // Whether a query should be sent now (none being on its way).
  bool QueryDue(uint64_t now) const;
  State Lookup(uint64_t now, bool query_in_flight) const;

  void Answered(uint64_t now, std::vector<in_addr> addresses, uint64_t ttl_ns);
  void Failed(uint64_t now);

  const std::vector<in_addr>& addresses() const { return addresses_; }

 private:
  uint64_t grace_ns_;
  uint64_t retry_ns_;
  bool answered_ = false;
  uint64_t answered_ns_ = 0;
  uint64_t ttl_ns_ = 0;
  bool failed_ = false;     // the last query failed ...
  uint64_t failed_ns_ = 0;  // ... at this time
  std::vector<in_addr> addresses_;
};

// Resolves `name` (A, class IN) at `server`: a query times out after 1 s and is sent once more
// (a new ID) before the lookup fails. An answer counts when it comes from the server, carries
// the query's ID and question, and has rcode NOERROR or NXDOMAIN; a truncated answer or any
// other rcode fails the lookup. Close() before the loop ends; the owner outlives the loop run.
class StubResolver {
 public:
  StubResolver(uv_loop_t* loop, const sockaddr_storage& server, std::string name, uint64_t grace_ns,
               uint64_t seed);
  StubResolver(const StubResolver&) = delete;

  // Whether `name` is a domain name a query can carry.
  static bool ValidName(const std::string& name);
  StubResolver& operator=(const StubResolver&) = delete;

  // The cache's state now, after sending a query if one is due.
  DnsCache::State Resolve(uint64_t now);
  const std::vector<in_addr>& addresses() const { return cache_.addresses(); }

  void Close();

  uint64_t lookups() const { return lookups_; }    // queries started (a retry is not one)
  uint64_t failures() const { return failures_; }  // lookups that got no answer
  const std::string& last_error() const { return last_error_; }

 private:
  friend struct ResolverCallbacks;

  void Send();
  void OnDatagram(const uint8_t* data, size_t length, const sockaddr* from, unsigned flags);
  void OnTimeout();
  void Fail(const std::string& why);
  uint16_t NextId();

  uv_loop_t* loop_;
  sockaddr_storage server_;
  std::string name_;  // absolute, with the final dot
  DnsCache cache_;
  uint64_t random_;
  uv_udp_t udp_{};
  uv_timer_t timer_{};
  bool open_ = false;
  bool in_flight_ = false;
  int attempt_ = 0;
  uint16_t id_ = 0;
  uint64_t lookups_ = 0;
  uint64_t failures_ = 0;
  std::string last_error_;    // why the last failed lookup failed
  std::string send_error_;    // a send's error in this lookup, if any
  std::string socket_error_;  // the socket could not be bound or read
  uint8_t buffer_[4096];
};

}  // namespace sluice_drill
