#include "proxy/http/http1_lines.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice::http1 {
namespace {

// The parsed views point into the line, which the helpers keep until their next call.
std::string& Kept(const std::string& line) {
  static std::string kept;
  kept = line;
  return kept;
}

LineError Request(const std::string& line, RequestLine* out = nullptr) {
  RequestLine local;
  return ParseRequestLine(Kept(line), out ? out : &local);
}
LineError Status(const std::string& line, StatusLine* out = nullptr) {
  StatusLine local;
  return ParseStatusLine(Kept(line), out ? out : &local);
}
LineError Field(const std::string& line, FieldLine* out = nullptr) {
  FieldLine local;
  return ParseFieldLine(Kept(line), out ? out : &local);
}
LineError Chunk(const std::string& line, uint64_t* size = nullptr) {
  uint64_t local = 0;
  return ParseChunkSizeLine(line, size ? size : &local);
}

TEST(Http1LinesTest, RequestLine) {
  RequestLine r;
  ASSERT_EQ(Request("GET /a?b HTTP/1.1\r", &r), LineError::kNone);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/a?b");
  EXPECT_EQ(r.minor, 1);
  ASSERT_EQ(Request("M-SEARCH * HTTP/1.0\r", &r), LineError::kNone);
  EXPECT_EQ(r.minor, 0);
  EXPECT_EQ(r.target, "*");
  // A target of every VCHAR, longer than one SSE2 block.
  std::string target = "/";
  for (int c = 0x21; c < 0x7F; ++c) target += static_cast<char>(c);
  ASSERT_EQ(Request("GET " + target + " HTTP/1.1\r", &r), LineError::kNone);
  EXPECT_EQ(r.target, target);

  EXPECT_EQ(Request("GET / HTTP/1.1"), LineError::kBareLf);
  EXPECT_EQ(Request("GET / HTTP/1.1\r\r"), LineError::kBareCr);
  EXPECT_EQ(Request("GET  / HTTP/1.1\r"), LineError::kStartLine);
  EXPECT_EQ(Request("GET / HTTP/1.1 \r"), LineError::kStartLine);
  EXPECT_EQ(Request("GET /  HTTP/1.1\r"), LineError::kStartLine);
  EXPECT_EQ(Request("GET\t/ HTTP/1.1\r"), LineError::kStartLine);
  EXPECT_EQ(Request(" GET / HTTP/1.1\r"), LineError::kStartLine);
  EXPECT_EQ(Request("GET /\r"), LineError::kStartLine);
  EXPECT_EQ(Request("GET\r"), LineError::kStartLine);
  EXPECT_EQ(Request("GET /a b HTTP/1.1\r"), LineError::kStartLine);
  EXPECT_EQ(Request(std::string("GET /\0 HTTP/1.1\r", 16)), LineError::kNul);
  EXPECT_EQ(Request("GET /\x7f HTTP/1.1\r"), LineError::kTargetCharacter);
  EXPECT_EQ(Request("GET /\x80 HTTP/1.1\r"), LineError::kTargetCharacter);
  EXPECT_EQ(Request("GET /\x01 HTTP/1.1\r"), LineError::kTargetCharacter);
  EXPECT_EQ(Request("FOO / HTTP/1.1\r"), LineError::kUnknownMethod);
  EXPECT_EQ(Request("get / HTTP/1.1\r"), LineError::kUnknownMethod);
  // A malformed line outranks an unknown method.
  EXPECT_EQ(Request("FOO  / HTTP/1.1\r"), LineError::kStartLine);
  EXPECT_EQ(Request("GET / HTTP/1.2\r"), LineError::kVersion);
  EXPECT_EQ(Request("GET / http/1.1\r"), LineError::kVersion);
  EXPECT_EQ(Request("GET / HTTP/1.10\r"), LineError::kStartLine);
  EXPECT_EQ(Request("GET / HTTP/2.0\r"), LineError::kVersionUnsupported);
  EXPECT_EQ(Request("GET / HTTP/0.9\r"), LineError::kVersionUnsupported);
}

TEST(Http1LinesTest, KnownMethods) {
  for (const char* m :
       {"GET",        "HEAD",     "POST",       "PUT",      "DELETE", "CONNECT",   "OPTIONS",
        "TRACE",      "COPY",     "LOCK",       "MKCOL",    "MOVE",   "PROPFIND",  "PROPPATCH",
        "SEARCH",     "UNLOCK",   "BIND",       "REBIND",   "UNBIND", "ACL",       "REPORT",
        "MKACTIVITY", "CHECKOUT", "MERGE",      "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
        "PATCH",      "PURGE",    "MKCALENDAR", "LINK",     "UNLINK", "SOURCE"}) {
    EXPECT_TRUE(IsKnownMethod(m)) << m;
  }
  for (const char* m : {"", "G", "GETS", "PRI", "DESCRIBE", "Get", "BREW", "QUERY"}) {
    EXPECT_FALSE(IsKnownMethod(m)) << m;
  }
}

TEST(Http1LinesTest, StatusLine) {
  StatusLine s;
  ASSERT_EQ(Status("HTTP/1.1 200 OK\r", &s), LineError::kNone);
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.reason, "OK");
  ASSERT_EQ(Status("HTTP/1.0 404 Not  Found\there\r", &s), LineError::kNone);
  EXPECT_EQ(s.minor, 0);
  EXPECT_EQ(s.reason, "Not  Found\there");
  ASSERT_EQ(Status("HTTP/1.1 204\r", &s), LineError::kNone);
  EXPECT_EQ(s.reason, "");
  ASSERT_EQ(Status("HTTP/1.1 200 \r", &s), LineError::kNone);
  ASSERT_EQ(Status("HTTP/1.1 200 caf\xc3\xa9\r", &s), LineError::kNone);

  EXPECT_EQ(Status("HTTP/1.1 200 OK"), LineError::kBareLf);
  EXPECT_EQ(Status("HTTP/1.1 20 OK\r"), LineError::kStatus);
  EXPECT_EQ(Status("HTTP/1.1 2000 OK\r"), LineError::kStatus);
  EXPECT_EQ(Status("HTTP/1.1  200 OK\r"), LineError::kStatus);
  EXPECT_EQ(Status("HTTP/1.1 200 O\x01K\r"), LineError::kReason);
  EXPECT_EQ(Status("HTTP/1.1 200 O\x7fK\r"), LineError::kReason);
  EXPECT_EQ(Status("HTTP/1.1 200 O\rK\r"), LineError::kBareCr);
  EXPECT_EQ(Status("HTTP/1.2 200 OK\r"), LineError::kVersion);
  EXPECT_EQ(Status("HTTP/2.0 200 OK\r"), LineError::kVersionUnsupported);
  EXPECT_EQ(Status("\r"), LineError::kStartLine);
  EXPECT_EQ(Status("HTTP/1.1\r"), LineError::kStartLine);
}

TEST(Http1LinesTest, FieldLine) {
  FieldLine f;
  ASSERT_EQ(Field("Host: example.com\r", &f), LineError::kNone);
  EXPECT_EQ(f.name, "Host");
  EXPECT_EQ(f.value, "example.com");
  ASSERT_EQ(Field("X-A:\t a \t b \t\r", &f), LineError::kNone);
  EXPECT_EQ(f.value, "a \t b");
  ASSERT_EQ(Field("X:\r", &f), LineError::kNone);
  EXPECT_EQ(f.value, "");
  ASSERT_EQ(Field("X:    \r", &f), LineError::kNone);
  EXPECT_EQ(f.value, "");
  ASSERT_EQ(Field("X: \x80\xff obs-text\r", &f), LineError::kNone);
  // Names of every length around the sixteen-byte block, simple and not.
  for (size_t len = 1; len <= 20; ++len) {
    for (char c : {'a', 'Z', '7', '-', '!', '~'}) {
      std::string name(len, c);
      ASSERT_EQ(Field(name + ":v\r", &f), LineError::kNone) << name;
      EXPECT_EQ(f.name, name);
      EXPECT_EQ(f.value, "v");
      EXPECT_EQ(Field(name + "(:v0123456789abcdef\r"), LineError::kFieldName) << name;
      EXPECT_EQ(Field(name + " :v0123456789abcdef\r"), LineError::kFieldName) << name;
      EXPECT_EQ(Field(name + "\x80:v0123456789abcdef\r"), LineError::kFieldName) << name;
    }
  }
  std::string long_value(100, 'v');
  ASSERT_EQ(Field("Long: " + long_value + "\r", &f), LineError::kNone);
  EXPECT_EQ(f.value, long_value);

  EXPECT_EQ(Field("X: a"), LineError::kBareLf);
  EXPECT_EQ(Field(" X: a\r"), LineError::kObsFold);
  EXPECT_EQ(Field("\tX: a\r"), LineError::kObsFold);
  EXPECT_EQ(Field(": a\r"), LineError::kEmptyFieldName);
  EXPECT_EQ(Field("X : a\r"), LineError::kFieldName);
  EXPECT_EQ(Field("X{: a\r"), LineError::kFieldName);
  EXPECT_EQ(Field("X\r"), LineError::kFieldName);
  EXPECT_EQ(Field("X: a\x01"
                  "b\r"),
            LineError::kFieldValue);
  EXPECT_EQ(Field("X: a\x7f\r"), LineError::kFieldValue);
  EXPECT_EQ(Field("X: a\rb\r"), LineError::kBareCr);
  EXPECT_EQ(Field(std::string("X: a\0b\r", 7)), LineError::kNul);
  EXPECT_EQ(Field(std::string("X\0: b\r", 6)), LineError::kNul);
  // The bad byte is found wherever it is in a long value (each position of a 40-byte value).
  for (size_t i = 0; i < 40; ++i) {
    std::string value(40, 'v');
    value[i] = '\x1f';
    EXPECT_EQ(Field("X: " + value + "\r"), LineError::kFieldValue) << i;
  }
}

TEST(Http1LinesTest, AFieldLineScannedWhereItLiesAgreesWithTheWholeLine) {
  // Every prefix of each line (with its LF and what follows) is either "not yet" or the whole
  // line's verdict, and the whole input finds the line's end.
  for (const std::string& line : std::vector<std::string>{
           "Host: example.com\r", "X:\r", "X: a\tb \r", "Content-Length-And-More: 12\r", "X\r",
           "X: a\x01"
           "b\r",
           "X: a\rb\r", "X: ab", " X: a\r", ": a\r", "X{: a\r", "X: \x7f\r",
           std::string("X: a\0\r", 6), "Long-Enough-Name: v\rw\r", "A-Name-Of-20-Bytes-: v\r"}) {
    const std::string input = line + "\nNext: x\r\n";
    FieldLine whole_field;
    const LineError whole = Field(line, &whole_field);
    const std::string whole_name(whole_field.name), whole_value(whole_field.value);
    for (size_t avail = 0; avail <= input.size(); ++avail) {
      FieldLine f;
      size_t cr = 0;
      const LineError e = ScanFieldLine(input.data(), avail, false, &f, &cr);
      if (e == LineError::kNone && cr == 0) continue;  // not yet
      EXPECT_EQ(e, whole) << testing::PrintToString(line) << " avail " << avail;
      if (e == LineError::kNone) {
        EXPECT_EQ(cr, line.size() - 1) << testing::PrintToString(line);
        EXPECT_EQ(f.name, whole_name);
        EXPECT_EQ(f.value, whole_value);
      }
    }
  }
}

TEST(Http1LinesTest, ChunkSizeLine) {
  uint64_t size = 0;
  ASSERT_EQ(Chunk("1a\r", &size), LineError::kNone);
  EXPECT_EQ(size, 26u);
  ASSERT_EQ(Chunk("000F\r", &size), LineError::kNone);
  EXPECT_EQ(size, 15u);
  ASSERT_EQ(Chunk("ffffffffffffffff\r", &size), LineError::kNone);
  EXPECT_EQ(size, ~uint64_t{0});
  ASSERT_EQ(Chunk("0000000000000000001\r", &size), LineError::kNone);
  EXPECT_EQ(size, 1u);
  EXPECT_EQ(Chunk("5;a\r"), LineError::kNone);
  EXPECT_EQ(Chunk("5;a=b;c\r"), LineError::kNone);
  EXPECT_EQ(Chunk("5;a=\"b \\\" c\"\r"), LineError::kNone);

  EXPECT_EQ(Chunk("5"), LineError::kBareLf);
  EXPECT_EQ(Chunk("\r"), LineError::kChunkSize);
  EXPECT_EQ(Chunk("zz\r"), LineError::kChunkSize);
  EXPECT_EQ(Chunk("5 \r"), LineError::kChunkSize);
  EXPECT_EQ(Chunk(" 5\r"), LineError::kChunkSize);
  EXPECT_EQ(Chunk("10000000000000000\r"), LineError::kChunkSize);
  EXPECT_EQ(Chunk("5;\r"), LineError::kChunkExtension);
  EXPECT_EQ(Chunk("5; a\r"), LineError::kChunkExtension);
  EXPECT_EQ(Chunk("5;a=\r"), LineError::kChunkExtension);
  EXPECT_EQ(Chunk("5;a=\"b\r"), LineError::kChunkExtension);
  EXPECT_EQ(Chunk("5;a=\"\x01\"\r"), LineError::kChunkExtension);
  EXPECT_EQ(Chunk("5\r\r"), LineError::kBareCr);
}

TEST(Http1LinesTest, ScansAgreeWithTheByteLoop) {
  // Every length up to three blocks, every position of one odd byte.
  for (size_t n = 0; n <= 48; ++n) {
    for (size_t at = 0; at <= n; ++at) {
      for (unsigned char odd : {0x00, 0x09, 0x1f, 0x20, 0x7f, 0x80, 0xff}) {
        std::string s(n, 'a');
        if (at < n) s[at] = static_cast<char>(odd);
        size_t control = n, non_visible = n;
        for (size_t i = 0; i < n; ++i) {
          unsigned char c = static_cast<unsigned char>(s[i]);
          if (control == n && (c < 0x20 || c == 0x7f)) control = i;
          if (non_visible == n && (c < 0x21 || c > 0x7e)) non_visible = i;
        }
        EXPECT_EQ(FindControl(s.data(), n), control) << n << " " << at << " " << int{odd};
        EXPECT_EQ(FindNonVisible(s.data(), n), non_visible) << n << " " << at << " " << int{odd};
        // The same range after twenty readable bytes, which a short range may be read with.
        std::string padded = std::string(20, '\x01') + s;
        const char* p = padded.data() + 20;
        EXPECT_EQ(FindControl(p, n, padded.data()), control) << n << " " << at;
        EXPECT_EQ(FindNonVisible(p, n, padded.data()), non_visible) << n << " " << at;
      }
    }
  }
}

}  // namespace
}  // namespace sluice::http1
