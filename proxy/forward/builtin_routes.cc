#include "proxy/forward/builtin_routes.h"

#include "steering/serving.h"

namespace sluice {

LocalAnswer AnswerServing(HttpMethod method, const SteeringTable* table, bool draining) {
  LocalAnswer answer;
  answer.headers.Add("Cache-Control", "no-store");
  if (method != HttpMethod::kGet && method != HttpMethod::kHead) {
    answer.status = 405;
    answer.headers.Add("Allow", "GET, HEAD");
    answer.body = "405 Method Not Allowed: GET or HEAD\n";
    return answer;
  }
  const ServingState state = DecideServing(table, draining);
  answer.status = state.status();
  answer.headers.Add("Content-Type", "application/json");
  // A HEAD response carries no body (over HTTP/2 none may be sent); the status says it all.
  if (method == HttpMethod::kGet) answer.body = ServingJson(state);
  return answer;
}

LocalAnswer AnswerPeerHealth(const std::string* view, const HopSigner& signer,
                             const SteeringTable& table, std::string_view from, uint64_t nonce) {
  LocalAnswer answer;
  answer.headers.Add("Content-Type", "application/json");
  if (!view) {
    answer.status = 503;
    answer.body = "{\"error\": \"starting\", \"ready\": false}\n";
    return answer;
  }
  // Signed for the poll that asked: a peer believes no report it cannot verify.
  answer.headers.Add(kHealthMacHeader, signer.MacHex(HealthReplyMessage(
                                           table.region(table.local()).name, from, nonce, *view)));
  answer.body = *view;
  return answer;
}

}  // namespace sluice
