#include "proxy/control/history_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace sluice {
namespace {

constexpr char kFormat[] = "sluice-history/1";

// Why the store at a path cannot be used as it is: damaged (move it aside) or not possible
// at all (the directory is missing or read-only).
struct OpenError {
  bool damaged = false;
  std::string message;
};

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

int Exec(sqlite3* db, const char* sql, std::string* error) {
  char* message = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
  if (rc != SQLITE_OK && error) *error = message ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return rc;
}

bool Damage(int rc) {
  rc &= 0xff;
  return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB || rc == SQLITE_FORMAT;
}

// The first column of the first row of `sql` as text ("" when there is none).
int QueryText(sqlite3* db, const char* sql, std::string* out, std::string* error) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      *out = text ? reinterpret_cast<const char*>(text) : "";
      rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
      out->clear();
      rc = SQLITE_OK;
    }
  }
  if (rc != SQLITE_OK) *error = sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  return rc;
}

sqlite3* TryOpen(const std::string& path, OpenError* failure) {
  const bool existed = Exists(path);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  std::string error;
  auto fail = [&](int code, std::string what) -> sqlite3* {
    failure->damaged = existed && Damage(code);
    failure->message = std::move(what);
    sqlite3_close(db);
    return nullptr;
  };
  if (rc != SQLITE_OK) return fail(rc, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  sqlite3_busy_timeout(db, 1000);
  if ((rc = Exec(db, "PRAGMA journal_mode=WAL", &error)) != SQLITE_OK) return fail(rc, error);
  if ((rc = Exec(db, "PRAGMA synchronous=NORMAL", &error)) != SQLITE_OK) return fail(rc, error);
  std::string check;
  if ((rc = QueryText(db, "PRAGMA quick_check", &check, &error)) != SQLITE_OK) {
    return fail(rc, error);
  }
  if (check != "ok") return fail(SQLITE_CORRUPT, "integrity check: " + check);
  rc = Exec(db,
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS signal(region TEXT NOT NULL, start INTEGER NOT NULL, "
            "span INTEGER NOT NULL, entry_sps REAL NOT NULL, serving_sps REAL NOT NULL, "
            "requests_per_second REAL NOT NULL, PRIMARY KEY(region, start, span)) WITHOUT ROWID;",
            &error);
  if (rc != SQLITE_OK) return fail(rc, error);
  std::string format;
  if ((rc = QueryText(db, "SELECT value FROM meta WHERE key = 'format'", &format, &error)) !=
      SQLITE_OK) {
    return fail(rc, error);
  }
  if (format.empty()) {
    std::string insert =
        absl::StrFormat("INSERT INTO meta(key, value) VALUES('format', '%s')", kFormat);
    if ((rc = Exec(db, insert.c_str(), &error)) != SQLITE_OK) return fail(rc, error);
  } else if (format != kFormat) {
    return fail(SQLITE_FORMAT, absl::StrFormat("format \"%s\", not \"%s\"", format, kFormat));
  }
  return db;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HistoryStore>> HistoryStore::Open(const std::string& path,
                                                                 std::string* note) {
  OpenError failure;
  sqlite3* db = TryOpen(path, &failure);
  if (!db && failure.damaged) {
    const std::string aside =
        absl::StrFormat("%s.damaged-%d", path, absl::ToUnixSeconds(absl::Now()));
    if (std::rename(path.c_str(), aside.c_str()) != 0) {
      return absl::InternalError(absl::StrFormat(
          "history %s is damaged (%s) and cannot be moved aside", path, failure.message));
    }
    for (const char* suffix : {"-wal", "-shm"}) {
      std::string from = path + suffix;
      if (Exists(from)) std::rename(from.c_str(), (aside + suffix).c_str());
    }
    *note = absl::StrFormat("history %s was damaged (%s): moved aside to %s, a new one started",
                            path, failure.message, aside);
    db = TryOpen(path, &failure);
  }
  if (!db) {
    return absl::UnavailableError(
        absl::StrFormat("history %s cannot be opened: %s", path, failure.message));
  }
  std::unique_ptr<HistoryStore> store(new HistoryStore(path, db));
  if (absl::Status s = store->Prepare(); !s.ok()) return s;
  return store;
}

HistoryStore::~HistoryStore() {
  sqlite3_finalize(insert_);
  sqlite3_close(db_);
}

absl::Status HistoryStore::Prepare() {
  int rc = sqlite3_prepare_v2(db_,
                              "INSERT OR REPLACE INTO signal(region, start, span, entry_sps, "
                              "serving_sps, requests_per_second) VALUES(?, ?, ?, ?, ?, ?)",
                              -1, &insert_, nullptr);
  if (rc != SQLITE_OK) {
    return absl::InternalError(absl::StrFormat("history %s: %s", path_, sqlite3_errmsg(db_)));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> HistoryStore::Load(SignalHistory* history, absl::Time now) {
  const int64_t t = absl::ToUnixSeconds(now);
  // The 10 s slots first (they build their minutes), then the minutes (which replace what
  // their slots built with the same mean, and stand alone once the slots are trimmed).
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(
      db_,
      "SELECT region, start, span, entry_sps, serving_sps, requests_per_second FROM signal "
      "WHERE (span = 10 AND start >= ?1) OR (span = 60 AND start >= ?2) ORDER BY span, start",
      -1, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return absl::InternalError(absl::StrFormat("history %s: %s", path_, sqlite3_errmsg(db_)));
  }
  sqlite3_bind_int64(stmt, 1, t - absl::ToInt64Seconds(kFineRetention));
  sqlite3_bind_int64(stmt, 2, t - absl::ToInt64Seconds(kCoarseRetention));
  size_t rows = 0;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    SignalRecord r;
    const unsigned char* region = sqlite3_column_text(stmt, 0);
    r.region = region ? reinterpret_cast<const char*>(region) : "";
    r.start = sqlite3_column_int64(stmt, 1);
    r.span = sqlite3_column_int(stmt, 2);
    r.point = {sqlite3_column_double(stmt, 3), sqlite3_column_double(stmt, 4),
               sqlite3_column_double(stmt, 5)};
    if (r.region.empty() || r.start > t + kFineSpan || r.point.entry_sps < 0 ||
        r.point.serving_sps < 0 || r.point.requests_per_second < 0) {
      continue;  // nothing this process wrote; skipped rather than believed
    }
    history->Add(r);
    ++rows;
  }
  std::string error = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db_);
  sqlite3_finalize(stmt);
  if (!error.empty()) return absl::InternalError(absl::StrFormat("history %s: %s", path_, error));
  return rows;
}

absl::Status HistoryStore::Write(const std::vector<SignalRecord>& records) {
  if (records.empty()) return absl::OkStatus();
  std::string error;
  if (Exec(db_, "BEGIN", &error) != SQLITE_OK) {
    return absl::InternalError(absl::StrFormat("history %s: %s", path_, error));
  }
  for (const SignalRecord& r : records) {
    sqlite3_reset(insert_);
    sqlite3_bind_text(insert_, 1, r.region.data(), static_cast<int>(r.region.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert_, 2, r.start);
    sqlite3_bind_int(insert_, 3, r.span);
    sqlite3_bind_double(insert_, 4, r.point.entry_sps);
    sqlite3_bind_double(insert_, 5, r.point.serving_sps);
    sqlite3_bind_double(insert_, 6, r.point.requests_per_second);
    if (sqlite3_step(insert_) != SQLITE_DONE) {
      error = sqlite3_errmsg(db_);
      sqlite3_reset(insert_);
      Exec(db_, "ROLLBACK", nullptr);
      return absl::InternalError(absl::StrFormat("history %s: %s", path_, error));
    }
  }
  sqlite3_reset(insert_);
  if (Exec(db_, "COMMIT", &error) != SQLITE_OK) {
    Exec(db_, "ROLLBACK", nullptr);
    return absl::InternalError(absl::StrFormat("history %s: %s", path_, error));
  }
  return absl::OkStatus();
}

absl::Status HistoryStore::Trim(absl::Time now) {
  const int64_t t = absl::ToUnixSeconds(now);
  std::string sql = absl::StrFormat(
      "DELETE FROM signal WHERE (span = 10 AND start < %d) OR (span = 60 AND start < %d)",
      t - absl::ToInt64Seconds(kFineRetention), t - absl::ToInt64Seconds(kCoarseRetention));
  std::string error;
  if (Exec(db_, sql.c_str(), &error) != SQLITE_OK) {
    return absl::InternalError(absl::StrFormat("history %s: %s", path_, error));
  }
  return absl::OkStatus();
}

}  // namespace sluice
