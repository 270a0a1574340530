#include "proxy/http/head_scanner.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

using Error = HeadScanner::Error;

Error ScanAll(HeadScanner::Kind kind, const std::string& input, size_t* consumed = nullptr,
              uint32_t max_bytes = 4096, uint32_t max_fields = 10) {
  HeadScanner s(max_bytes, max_fields);
  s.Reset(kind);
  size_t n = s.Scan(input.data(), input.size());
  if (consumed) *consumed = n;
  if (s.error() == Error::kNone && !s.done()) return Error::kNone;
  return s.error();
}

TEST(HeadScannerTest, FindsTheEndOfTheHead) {
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  size_t consumed = 0;
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kRequest, head + "BODY", &consumed), Error::kNone);
  EXPECT_EQ(consumed, head.size());
}

TEST(HeadScannerTest, ByteAtATimeMatchesWholeBuffer) {
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n";
  HeadScanner s(4096, 10);
  s.Reset(HeadScanner::Kind::kRequest);
  for (size_t i = 0; i < head.size(); ++i) {
    EXPECT_FALSE(s.done());
    EXPECT_EQ(s.Scan(head.data() + i, 1), 1u);
  }
  EXPECT_TRUE(s.done());
  EXPECT_EQ(s.bytes(), head.size());
}

TEST(HeadScannerTest, Rejections) {
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kRequest, "GET / HTTP/1.1\nX: y\r\n\r\n"), Error::kBareLf);
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kRequest, "GET / HTTP/1.1\r\nX: y\rZ\r\n\r\n"),
            Error::kBareCr);
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kRequest, "GET / HTTP/1.1\r\nX: y\r\n z\r\n\r\n"),
            Error::kObsFold);
  EXPECT_EQ(
      ScanAll(HeadScanner::Kind::kRequest, std::string("GET / HTTP/1.1\r\nX: \0\r\n\r\n", 23)),
      Error::kNul);
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kRequest, "GET  / HTTP/1.1\r\n\r\n"), Error::kStartLine);
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kRequest, "GET / HTTP/1.1 \r\n\r\n"), Error::kStartLine);
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kRequest, "GET /\tHTTP/1.1\r\n\r\n"), Error::kStartLine);
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kRequest, " GET / HTTP/1.1\r\n\r\n"), Error::kStartLine);
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kResponse, "\r\nHTTP/1.1 200 OK\r\n\r\n"),
            Error::kStartLine);
}

TEST(HeadScannerTest, ResponseReasonMayContainSpaces) {
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kResponse, "HTTP/1.1 200 All Good\r\n\r\n"), Error::kNone);
}

TEST(HeadScannerTest, Limits) {
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(100, 'a') + "\r\n\r\n";
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kRequest, big, nullptr, 64), Error::kTooLarge);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 4; ++i) many += "X: 1\r\n";
  many += "\r\n";
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kRequest, many, nullptr, 4096, 3), Error::kTooManyFields);
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kRequest, many, nullptr, 4096, 4), Error::kNone);
}

TEST(HeadScannerTest, EmptyTrailerSection) {
  size_t consumed = 0;
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kTrailers, "\r\nNEXT", &consumed), Error::kNone);
  EXPECT_EQ(consumed, 2u);
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kTrailers, "A: 1\r\n\r\n", &consumed), Error::kNone);
  EXPECT_EQ(consumed, 8u);
  EXPECT_EQ(ScanAll(HeadScanner::Kind::kTrailers, " A: 1\r\n\r\n"), Error::kObsFold);
}

}  // namespace
}  // namespace sluice
