// The detector's history on local disk (steering/signal_history.h): an embedded SQLite
// database, one row per closed slot (region, start, span 10 or 60 s, the three rates).
//
// SQLite in WAL mode with synchronous=NORMAL: a commit is one append to the write-ahead log,
// and a process killed at any moment (kill -9) leaves the database as of its last commit (at
// most the last slot lost); a power cut may lose the last commits, never corrupt the file.
// A store that cannot be read (not a database, failing its integrity check, or of another
// format) is moved aside as FILE.damaged-UNIXTIME, said so in the log, and a new one started:
// never silently emptied, never half-used.
//
// Control thread only (SQLite calls block briefly; writes are a few rows every 10 s).
#ifndef SLUICE_PROXY_CONTROL_HISTORY_STORE_H_
#define SLUICE_PROXY_CONTROL_HISTORY_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "steering/signal_history.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sluice {

class HistoryStore {
 public:
  // Opens or creates the store at `path`. A damaged one is moved aside first; `note` then
  // says where to. Fails only when no store can be made at `path` at all (a directory that
  // does not exist or cannot be written).
  static absl::StatusOr<std::unique_ptr<HistoryStore>> Open(const std::string& path,
                                                            std::string* note);
  ~HistoryStore();
  HistoryStore(const HistoryStore&) = delete;
  HistoryStore& operator=(const HistoryStore&) = delete;

  // Everything still within the retention of its series, into `history`; returns the rows.
  absl::StatusOr<size_t> Load(SignalHistory* history, absl::Time now);
  // Writes (replaces) these slots in one transaction.
  absl::Status Write(const std::vector<SignalRecord>& records);
  // Drops the slots older than their series' retention.
  absl::Status Trim(absl::Time now);
  const std::string& path() const { return path_; }

 private:
  HistoryStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  absl::Status Prepare();

  std::string path_;
  sqlite3* db_;
  sqlite3_stmt* insert_ = nullptr;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_HISTORY_STORE_H_
