#include "common/http_headers.h"

#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(HeaderMapTest, AddGetRemove) {
  HeaderMap h;
  h.Add("Host", "a");
  h.Add("X-Forwarded-For", "1.2.3.4");
  h.Add("x-forwarded-for", "5.6.7.8");
  h.Add("Sluice-Hop", "forged");
  EXPECT_EQ(h.size(), 4u);
  EXPECT_EQ(*h.Get("HOST"), "a");
  EXPECT_EQ(h.kind(0), HeaderKind::kHost);
  EXPECT_EQ(h.CountKind(HeaderKind::kXForwardedFor), 2);
  EXPECT_EQ(h.kind(3), HeaderKind::kSluiceInternal);
  EXPECT_EQ(h.Remove("X-FORWARDED-FOR"), 2);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.RemoveKind(HeaderKind::kSluiceInternal), 1);
  h.Set("host", "b");
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(*h.Get("Host"), "b");
  EXPECT_FALSE(h.Get("missing").has_value());
}

TEST(HeaderMapTest, TheSerializedSizeBoundIsNeverBelowTheSize) {
  // Every way a field comes in or goes; the bound is what a serializer reserves.
  HeaderMap h;
  EXPECT_EQ(h.SerializedSizeBound(), h.SerializedSize());
  h.Add("Host", "example.test");
  EXPECT_GE(h.SerializedSizeBound(), h.SerializedSize());
  const std::string line = "Accept:   text/html  ";
  h.AddFromLine(std::string_view(line).substr(0, 6), std::string_view(line).substr(10, 9),
                HeaderKind::kOther);
  EXPECT_GE(h.SerializedSizeBound(), h.SerializedSize());
  h.BeginField();
  h.AppendName("X-Long");
  h.AppendValue("value with trailing space   ");
  h.FinishField();
  EXPECT_GE(h.SerializedSizeBound(), h.SerializedSize());
  h.Set("Accept", "*/*");
  h.Add("Via", "1.1 a");
  h.Remove("Host");
  EXPECT_GE(h.SerializedSizeBound(), h.SerializedSize());
  EXPECT_EQ(h.SerializedSize(), std::string("X-Long: value with trailing space\r\n"
                                            "Accept: */*\r\nVia: 1.1 a\r\n")
                                    .size());
}

TEST(HeaderMapTest, IncrementalFieldsTrimTrailingWhitespace) {
  HeaderMap h;
  h.BeginField();
  h.AppendName("Cont");
  h.AppendName("ent-Length");
  h.AppendValue("12");
  h.AppendValue(" \t");
  h.FinishField();
  EXPECT_EQ(h.name(0), "Content-Length");
  EXPECT_EQ(h.value(0), "12");
  EXPECT_EQ(h.kind(0), HeaderKind::kContentLength);
}

TEST(HeaderMapTest, Classification) {
  EXPECT_EQ(ClassifyHeaderName("TE"), HeaderKind::kTe);
  EXPECT_EQ(ClassifyHeaderName("Proxy-Authorization"), HeaderKind::kProxyOther);
  EXPECT_EQ(ClassifyHeaderName("Proxy-Connection"), HeaderKind::kProxyConnection);
  EXPECT_EQ(ClassifyHeaderName("Transfer-Encoding"), HeaderKind::kTransferEncoding);
  EXPECT_EQ(ClassifyHeaderName("X-Other"), HeaderKind::kOther);
  EXPECT_TRUE(IsHopByHop(HeaderKind::kKeepAlive));
  EXPECT_FALSE(IsHopByHop(HeaderKind::kHost));
}

// Every name the proxy knows, as lower case.
const std::vector<std::pair<std::string, HeaderKind>>& KnownNames() {
  static const auto* names = new std::vector<std::pair<std::string, HeaderKind>>{
      {"te", HeaderKind::kTe},
      {"via", HeaderKind::kVia},
      {"host", HeaderKind::kHost},
      {"expect", HeaderKind::kExpect},
      {"upgrade", HeaderKind::kUpgrade},
      {"trailer", HeaderKind::kTrailer},
      {"forwarded", HeaderKind::kForwarded},
      {"x-real-ip", HeaderKind::kXRealIp},
      {"connection", HeaderKind::kConnection},
      {"keep-alive", HeaderKind::kKeepAlive},
      {"authorization", HeaderKind::kAuthorization},
      {"content-length", HeaderKind::kContentLength},
      {"x-forwarded-for", HeaderKind::kXForwardedFor},
      {"proxy-connection", HeaderKind::kProxyConnection},
      {"x-forwarded-host", HeaderKind::kXForwardedHost},
      {"x-forwarded-port", HeaderKind::kXForwardedPort},
      {"transfer-encoding", HeaderKind::kTransferEncoding},
      {"x-forwarded-proto", HeaderKind::kXForwardedProto},
  };
  return *names;
}

TEST(HeaderMapTest, EveryKnownNameInAnyCase) {
  for (const auto& [lower, kind] : KnownNames()) {
    std::string upper = lower;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(ClassifyHeaderName(lower), kind) << lower;
    EXPECT_EQ(ClassifyHeaderName(upper), kind) << upper;
    // Every single letter upper-cased, one at a time, and every other letter.
    for (size_t i = 0; i < lower.size(); ++i) {
      std::string one = lower;
      one[i] = upper[i];
      EXPECT_EQ(ClassifyHeaderName(one), kind) << one;
    }
    std::string alternate = lower;
    for (size_t i = 0; i < lower.size(); i += 2) alternate[i] = upper[i];
    EXPECT_EQ(ClassifyHeaderName(alternate), kind) << alternate;
  }
  EXPECT_EQ(ClassifyHeaderName("Sluice-Hop"), HeaderKind::kSluiceInternal);
  EXPECT_EQ(ClassifyHeaderName("SLUICE-"), HeaderKind::kSluiceInternal);
  EXPECT_EQ(ClassifyHeaderName("sluice-region-of-the-edge-that-answered"),
            HeaderKind::kSluiceInternal);
  EXPECT_EQ(ClassifyHeaderName("PROXY-"), HeaderKind::kProxyOther);
  EXPECT_EQ(ClassifyHeaderName("proxy-authenticate"), HeaderKind::kProxyOther);
}

TEST(HeaderMapTest, NearMissesAreOther) {
  for (const auto& [lower, kind] : KnownNames()) {
    // Any byte changed to another letter, to a byte that equals it but for bit 0x20 and is
    // not its other case, or to a control byte; one byte more or less.
    for (size_t i = 0; i < lower.size(); ++i) {
      for (char replacement : {'q', '_', '\r', '\0', '\x7f', static_cast<char>(lower[i] ^ 0x20)}) {
        if (replacement == lower[i]) continue;
        std::string miss = lower;
        miss[i] = replacement;
        if (std::isalpha(static_cast<unsigned char>(lower[i])) &&
            replacement == static_cast<char>(lower[i] ^ 0x20)) {
          continue;  // the other case of a letter: a match, tested above
        }
        HeaderKind got = ClassifyHeaderName(miss);
        EXPECT_TRUE(got == HeaderKind::kOther || got == HeaderKind::kProxyOther ||
                    got == HeaderKind::kSluiceInternal)
            << miss;
        EXPECT_NE(got, kind) << miss;
      }
    }
    EXPECT_NE(ClassifyHeaderName(lower + "s"), kind) << lower;
    EXPECT_NE(ClassifyHeaderName(lower.substr(0, lower.size() - 1)), kind) << lower;
    EXPECT_NE(ClassifyHeaderName(lower.substr(1)), kind) << lower;
  }
  // '-' and CR differ only in bit 0x20; a name with CR for '-' is not the known name.
  EXPECT_EQ(ClassifyHeaderName("content\rlength"), HeaderKind::kOther);
  EXPECT_EQ(ClassifyHeaderName("x\rforwarded-for"), HeaderKind::kOther);
  EXPECT_EQ(ClassifyHeaderName("Proxy-Connectiom"), HeaderKind::kProxyOther);
  EXPECT_EQ(ClassifyHeaderName("X-Forwarded-Xost"), HeaderKind::kOther);
  EXPECT_EQ(ClassifyHeaderName("proxy"), HeaderKind::kOther);
  EXPECT_EQ(ClassifyHeaderName("proxy_"), HeaderKind::kOther);
  EXPECT_EQ(ClassifyHeaderName("sluice"), HeaderKind::kOther);
  EXPECT_EQ(ClassifyHeaderName("sluice_x"), HeaderKind::kOther);
  EXPECT_EQ(ClassifyHeaderName(""), HeaderKind::kOther);
  EXPECT_EQ(ClassifyHeaderName(std::string_view("te\0", 3)), HeaderKind::kOther);
  EXPECT_EQ(ClassifyHeaderName(std::string_view("host", 3)), HeaderKind::kOther);
}

TEST(HeaderMapTest, ListElements) {
  std::vector<std::string> out;
  ForEachListElement(" a, ,b ,\tc\t,", [&](std::string_view e) { out.emplace_back(e); });
  EXPECT_EQ(out, (std::vector<std::string>{"a", "b", "c"}));
}

}  // namespace
}  // namespace sluice
