#include "proxy/observe/access_log.h"

#include <nlohmann/json.hpp>
#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(AccessLogTest, OneValidJsonLinePerRecord) {
  AccessLogRecord r;
  r.unix_micros = 1795327100779123;  // 2026-11-22T05:58:20.779
  r.request_id = "id-\"quoted\"\\";
  r.method = "GET";
  r.path = "/a\x01\n\xff\xc3\xa9";
  r.status = 503;
  r.bytes_in = 12;
  r.duration_us = 1234567;
  r.route = "api";
  r.decision = "evacuated";
  r.region = "eu-west-1";
  r.retries = 2;
  r.rejected = "shed";
  std::string out;
  AppendAccessLogLine(r, &out);
  AppendAccessLogLine(r, &out);
  ASSERT_EQ(out.back(), '\n');
  size_t newline = out.find('\n');
  ASSERT_EQ(out.substr(0, newline + 1), out.substr(newline + 1));  // one line per record
  nlohmann::json j = nlohmann::json::parse(out.substr(0, newline));
  EXPECT_EQ(j["time"], "2026-11-22T05:58:20.779Z");
  EXPECT_EQ(j["request_id"], "id-\"quoted\"\\");
  // Control characters and bytes beyond ASCII come out escaped, never raw.
  EXPECT_EQ(j["path"], std::string("/a\u0001\n\u00ff\u00c3\u00a9"));
  EXPECT_EQ(out.find('\x01'), std::string::npos);
  EXPECT_EQ(j["status"], 503);
  EXPECT_EQ(j["duration_ms"], 1234.567);
  EXPECT_EQ(j["retries"], 2);
  EXPECT_EQ(j["rejected_by"], "shed");
  EXPECT_EQ(j["region"], "eu-west-1");
}

}  // namespace
}  // namespace sluice
