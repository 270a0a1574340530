#include "ctl/audit_table.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "gtest/gtest.h"

namespace sluice {
namespace {

using nlohmann::json;

const absl::Time kNow = absl::FromUnixSeconds(1764698400);

TEST(AuditQueryStringTest, PassesSinceOnEncodedAndAddsTheLimit) {
  EXPECT_EQ(*AuditQueryString("", 0, kNow), "");
  EXPECT_EQ(*AuditQueryString("", 50, kNow), "?limit=50");
  EXPECT_EQ(*AuditQueryString("seq:17", 0, kNow), "?since=seq%3A17");
  EXPECT_EQ(*AuditQueryString("1764698400.5", 10, kNow), "?since=1764698400.5&limit=10");
  EXPECT_EQ(*AuditQueryString("2026-12-02T19:00:00+01:00", 0, kNow),
            "?since=2026-12-02T19%3A00%3A00%2B01%3A00");
}

TEST(AuditQueryStringTest, ADurationMeansThatLongAgo) {
  EXPECT_EQ(*AuditQueryString("10m", 0, kNow), "?since=1764697800.000");
  EXPECT_EQ(*AuditQueryString("1h30m", 0, kNow), "?since=1764693000.000");
  EXPECT_FALSE(AuditQueryString("yesterday", 0, kNow).ok());
  EXPECT_EQ(*AuditQueryString("10", 0, kNow), "?since=10");  // Unix seconds: the API judges
}

TEST(RenderAuditEventsTest, OneLinePerEventWithVersions) {
  json events = json::parse(R"([
    {"seq": 1, "time": "2026-12-02T18:00:00.123Z", "actor": "ops", "action": "set us-east-1 25%",
     "version_before": 3, "version_after": 4, "warning": false},
    {"seq": 2, "time": "2026-12-02T18:00:01.000Z", "actor": "detector",
     "action": "us-east-1 looks sick", "version_before": 4, "version_after": 4, "warning": true}
  ])");
  std::ostringstream out;
  RenderAuditEvents(events, true, out);
  std::string text = out.str();
  std::istringstream lines(text);
  std::string header, first, second, extra;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_FALSE(std::getline(lines, extra));
  EXPECT_NE(header.find("TIME"), std::string::npos);
  EXPECT_NE(header.find("ACTION"), std::string::npos);
  EXPECT_NE(first.find("2026-12-02T18:00:00.123Z"), std::string::npos);
  EXPECT_NE(first.find("ops"), std::string::npos);
  EXPECT_NE(first.find("3->4"), std::string::npos);
  EXPECT_NE(first.find("set us-east-1 25%"), std::string::npos);
  EXPECT_NE(second.find("! us-east-1 looks sick"), std::string::npos);
  EXPECT_EQ(second.find("->"), std::string::npos);  // the table did not change
}

TEST(RenderAuditEventsTest, MissingFieldsShowADash) {
  std::ostringstream out;
  RenderAuditEvents(json::parse(R"([{"seq": 5}])"), false, out);
  EXPECT_EQ(out.str().rfind("5 ", 0), 0u) << out.str();
  EXPECT_NE(out.str().find(" - "), std::string::npos) << out.str();
  std::ostringstream none;
  RenderAuditEvents(json(nullptr), false, none);
  EXPECT_EQ(none.str(), "");
}

}  // namespace
}  // namespace sluice
