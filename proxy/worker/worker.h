// A worker: one thread, one libuv loop, its own listeners (SO_REUSEPORT), connections,
// upstream pools and configuration snapshot. Nothing on the request path is shared with other
// threads. The control thread talks to a worker only through Post(), which queues a task and
// wakes the loop (uv_async); the task then runs on the worker's thread.
#ifndef SLUICE_PROXY_WORKER_WORKER_H_
#define SLUICE_PROXY_WORKER_WORKER_H_

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "filters/auth/key_slots.h"
#include "proxy/config/config.h"
#include "proxy/event/intrusive_list.h"
#include "proxy/event/loop_context.h"
#include "proxy/forward/worker_snapshot.h"
#include "proxy/worker/downstream_connection.h"
#include "proxy/worker/listener.h"

namespace sluice {

class Worker {
 public:
  // `on_exit` runs on the worker thread when its loop has finished (after a drain).
  // `hop_replay`: the node's memory of accepted hop markers, shared by its workers.
  Worker(int index, std::shared_ptr<HopReplayCache> hop_replay, std::function<void()> on_exit);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  // --- Control thread ---
  // Starts the thread with a first configuration, its listening sockets and the addresses the
  // endpoint names resolved to ("cluster|host:port" -> addresses).
  void Start(ConfigPtr config, std::vector<ListenerSocket> listeners,
             std::map<std::string, std::vector<SocketAddress>> resolved = {});
  // Runs `task` on the worker's loop. Thread-safe.
  void Post(std::function<void(Worker*)> task);
  void Join();

  // --- Worker thread ---
  // A new configuration: new requests use it; sockets for new listeners come with it, and
  // listeners whose key is not in `keep` or `added` are closed.
  void ApplyConfig(ConfigPtr config, std::vector<ListenerSocket> added,
                   const std::map<std::string, ListenerOptions>& keep);
  // A name (endpoint text "host:port" of a cluster) resolved to these addresses.
  void UpdateResolved(const std::string& cluster, const std::string& endpoint,
                      std::vector<SocketAddress> addresses);
  // The active health checks' verdict on an endpoint changed.
  void UpdateHealth(const std::string& cluster, const SocketAddress& address, bool healthy);
  // A JWKS file changed: new keys for the auth filters that read it.
  void UpdateKeys(const std::string& path, std::shared_ptr<const JsonWebKeySet> keys);
  // A cohort CIDR file changed: its new map, for the cohort rules that read `path` (kept unless
  // this worker already holds a newer one, from a configuration reload).
  void UpdateCohortMap(const std::string& path, CohortCidrMapPtr map);
  // The controller published a new steering table: new requests use it (and so do snapshots
  // built by later reloads, until the next one). Null: the configuration's own table.
  void SetSteeringTable(SteeringTablePtr table);
  // The admin API injected a cluster's standby endpoints: they take traffic from now on (with
  // the cluster's slow start), across reloads.
  // `inject` false: takes back what an earlier call injected.
  void InjectStandby(const std::string& cluster, bool inject);
  // The steering state's standbys for this node's region ("*": every cluster): they take
  // traffic while listed; a cluster dropped from the list goes back to standby.
  void SetFleetStandbys(std::set<std::string> clusters);
  // Where this worker's access log lines go (null: nowhere). Before Start(), or posted.
  void SetAccessLog(std::shared_ptr<AccessLogSink> sink, double sample);
  // The node's newest health document, for peer regions' /v1/health polls.
  void SetNodeHealth(std::shared_ptr<const std::string> doc) { node_health_ = std::move(doc); }
  // Read from the control thread at scrape time (its counters are single-writer atomics).
  const WorkerMetrics& metrics() const { return metrics_; }
  WorkerMetrics& mutable_metrics() { return metrics_; }
  // Stops accepting, lets exchanges in progress finish, then ends the loop.
  void BeginDrain();
  // Closes every connection now (the drain timeout passed).
  void ForceClose();

  int index() const { return index_; }
  LoopContext* context() { return context_.get(); }
  const WorkerSnapshotPtr& snapshot() const { return snapshot_; }
  bool draining() const { return draining_; }
  uint64_t NextConnectionId() { return ++connection_ids_ * 256 + static_cast<uint64_t>(index_); }
  IntrusiveList<DownstreamConnection, &DownstreamConnection::worker_node_>& connections() {
    return connections_;
  }
  void OnConnectionOpened() {
    ++connection_count_;
    metrics_.connections_open.Set(connection_count_);
    metrics_.connections_total.Add();
  }
  void OnConnectionClosed(bool counted);
  uint32_t connection_count() const { return connection_count_; }
  // Counts one more connection from the client `key` (SocketAddress::ClientKey); false, and
  // nothing counted, when the client already has this worker's share of
  // limits.max_connections_per_client. Every true is matched by one ReleaseClient.
  bool AdmitClient(uint64_t key);
  void ReleaseClient(uint64_t key);
  void CountRefusedConnection() { ++refused_connections_; }
  uint64_t refused_connections() const { return refused_connections_; }

 private:
  void Run(ConfigPtr config, std::vector<ListenerSocket> listeners);
  void OnAsync();
  void BuildSnapshot(ConfigPtr config);
  void ResolveMetricCells(WorkerSnapshot* snapshot);
  // The endpoints of a cluster now: configured addresses and resolved names, reusing existing
  // endpoints (recorded in `keep`).
  std::vector<std::shared_ptr<UpstreamEndpoint>> Members(
      const ClusterConfig& cluster, const Http1Limits& response_limits,
      std::map<std::string, std::shared_ptr<UpstreamEndpoint>>* keep);
  // The cluster's endpoints open their warm HTTP/2 connections (counted in its metrics).
  void WarmUp(ClusterRuntime& cluster);
  void OpenListeners(std::vector<ListenerSocket> sockets);
  void MaybeFinish();

  const int index_;
  std::shared_ptr<HopReplayCache> hop_replay_;
  std::function<void()> on_exit_;
  std::thread thread_;
  uv_loop_t loop_;
  std::unique_ptr<LoopContext> context_;
  uv_async_t async_;

  std::mutex mutex_;  // guards inbox_ only: the control thread's door, never the data path
  std::vector<std::function<void(Worker*)>> inbox_;

  WorkerSnapshotPtr snapshot_;
  std::map<std::string, std::shared_ptr<UpstreamEndpoint>> endpoints_;  // "cluster|address"
  std::multimap<std::string, Listener*> listeners_;  // by address (one or more sockets each)
  KeySlots key_slots_;                               // JWKS keys in force, by file
  std::map<std::string, std::vector<SocketAddress>> resolved_;  // "cluster|host:port"
  std::map<std::string, bool> health_;  // "cluster|address": last active check verdict
  SteeringTablePtr steering_table_;     // from the controller; null: the configuration's
  std::map<std::string, CohortCidrMapPtr> cohort_maps_;  // newest by cohort CIDR file
  std::set<std::string> injected_;        // clusters whose standbys were injected at run time
  std::set<std::string> fleet_injected_;  // the same from the steering state
  std::shared_ptr<const std::string> node_health_;  // for peers' /v1/health
  std::shared_ptr<AccessLogSink> access_sink_;
  double access_sample_ = 1.0;
  std::unique_ptr<AccessLogBuffer> access_log_;  // lives with the loop
  WorkerMetrics metrics_;
  Http1Limits response_limits_;
  IntrusiveList<DownstreamConnection, &DownstreamConnection::worker_node_> connections_;
  uint64_t connection_ids_ = 0;
  uint32_t connection_count_ = 0;
  absl::flat_hash_map<uint64_t, uint32_t> client_connections_;  // by ClientKey, while capped
  uint64_t refused_connections_ = 0;
  bool draining_ = false;
  bool finished_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_WORKER_WORKER_H_
