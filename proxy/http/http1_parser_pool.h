// Parsers kept per thread for connections that need one only while a message is under way: an
// idle keep-alive connection, downstream or pooled upstream, holds none (a parser with its
// llhttp state is about 220 bytes), and taking one back costs no allocation once the thread
// has warmed up. At most 256 free parsers are kept per thread and mode.
#ifndef SLUICE_PROXY_HTTP_HTTP1_PARSER_POOL_H_
#define SLUICE_PROXY_HTTP_HTTP1_PARSER_POOL_H_

#include <memory>

#include "proxy/http/http1_parser.h"

namespace sluice {

// A parser for `mode`, reinitialised for `limits` and `handler`, ready for a message.
std::unique_ptr<Http1Parser> TakeHttp1Parser(Http1Parser::Mode mode, const Http1Limits& limits,
                                             Http1Parser::Handler* handler);
// Back to this thread's pool (or freed when the pool is full). The parser must not be in use:
// never from inside one of its own callbacks. Any head it still holds is released first.
void GiveHttp1Parser(Http1Parser::Mode mode, std::unique_ptr<Http1Parser> parser);

}  // namespace sluice

#endif  // SLUICE_PROXY_HTTP_HTTP1_PARSER_POOL_H_
