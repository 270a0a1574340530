#include "common/http_headers.h"

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

TEST(HeaderMapTest, ListElements) {
  std::vector<std::string> out;
  ForEachListElement(" a, ,b ,\tc\t,", [&](std::string_view e) { out.emplace_back(e); });
  EXPECT_EQ(out, (std::vector<std::string>{"a", "b", "c"}));
}

}  // namespace
}  // namespace sluice
