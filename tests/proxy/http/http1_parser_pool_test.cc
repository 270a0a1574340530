#include "proxy/http/http1_parser_pool.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

struct Heads : Http1Parser::Handler {
  int heads = 0;
  int complete = 0;
  void OnHead() override { ++heads; }
  void OnBody(std::string_view) override {}
  void OnMessageComplete() override { ++complete; }
};

TEST(Http1ParserPoolTest, AGivenParserComesBackReinitialisedForItsMode) {
  Heads first;
  std::unique_ptr<Http1Parser> parser =
      TakeHttp1Parser(Http1Parser::Mode::kResponse, Http1Limits{}, &first);
  const std::string half = "HTTP/1.1 200 OK\r\nContent-Le";
  parser->Execute(half.data(), half.size());  // given back in the middle of a head
  Http1Parser* address = parser.get();
  GiveHttp1Parser(Http1Parser::Mode::kResponse, std::move(parser));

  // A request parser is another pool's.
  Heads other;
  std::unique_ptr<Http1Parser> request =
      TakeHttp1Parser(Http1Parser::Mode::kRequest, Http1Limits{}, &other);
  EXPECT_NE(request.get(), address);

  Heads second;
  parser = TakeHttp1Parser(Http1Parser::Mode::kResponse, Http1Limits{}, &second);
  EXPECT_EQ(parser.get(), address);
  EXPECT_TRUE(parser->idle());
  const std::string response = "HTTP/1.1 204 No Content\r\n\r\n";
  parser->ExpectResponse(HttpMethod::kGet, false);
  Http1Parser::Result r = parser->Execute(response.data(), response.size());
  EXPECT_EQ(r.outcome, Http1Parser::Outcome::kMessageComplete);
  EXPECT_EQ(second.heads, 1);
  EXPECT_EQ(second.complete, 1);
  EXPECT_EQ(first.heads, 0);
  ASSERT_TRUE(parser->TakeResponse());
  GiveHttp1Parser(Http1Parser::Mode::kResponse, std::move(parser));
  GiveHttp1Parser(Http1Parser::Mode::kRequest, std::move(request));
}

}  // namespace
}  // namespace sluice
