// Fuzzes the downstream HTTP/1.1 codec as a whole: pipelining, early answers, upgrades,
// half-closes and resets, with a handler whose behaviour the input chooses. Invariants: no
// crash, no sanitizer report, no leak, and nothing is written after the transport closed.
#include <uv.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "proxy/http/http1_server_codec.h"
#include "tests/fuzz/fuzz_input.h"

namespace sluice {
namespace {

struct Transport : CodecTransport {
  std::string written;
  bool closed = false;
  void Write(std::string_view a, std::string_view b, std::string_view c) override {
    if (closed) std::abort();
    written.append(a).append(b).append(c);
    if (written.size() > (1 << 20)) written.clear();
  }
  size_t QueuedBytes() const override { return 0; }
  void PauseReading() override {}
  void ResumeReading() override {}
  void ShutdownWrite() override {}
  void CloseAfterWrites() override { closed = true; }
  void Abort() override { closed = true; }
};

class Handler : public ServerStreamHandler {
 public:
  Handler(ServerStream* stream, uint8_t mode) : stream_(stream), mode_(mode) {}
  void OnRequestHead(RequestHeadPtr head) override {
    upgrade_ = head->upgrade;
    if (mode_ % 4 == 0) Respond(true);  // answer before the body
  }
  void OnRequestBody(std::string_view) override {
    if (mode_ % 4 == 1) stream_->PauseRequestBody();
  }
  void OnRequestEnd() override {
    if (mode_ % 4 == 2) Respond(false);
    if (mode_ % 4 == 3) stream_->Reset();
  }
  void OnDownstreamDrained() override {}
  void OnStreamReset(StreamResetReason) override { stream_ = nullptr; }

 private:
  void Respond(bool early) {
    if (!stream_) return;
    ResponseHeadPtr head = MakeResponseHead();
    head->status = upgrade_ && (mode_ & 8) ? 101 : 200;
    head->framing = (mode_ & 16) ? BodyFraming::kChunked : BodyFraming::kContentLength;
    head->content_length = 2;
    stream_->SendResponseHead(*head, false);
    stream_->SendResponseBody("ok", !(head->status == 101));
  }
  ServerStream* stream_;
  uint8_t mode_;
  bool upgrade_ = false;
};

struct Factory : StreamFactory {
  uint8_t mode = 0;
  std::unique_ptr<ServerStreamHandler> NewStream(ServerStream* stream) override {
    return std::make_unique<Handler>(stream, mode++);
  }
};

LoopContext* Context() {
  static uv_loop_t loop;
  static LoopContext* context = [] {
    uv_loop_init(&loop);
    return new LoopContext(&loop);
  }();
  return context;
}

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  sluice::LoopContext* context = sluice::Context();
  sluice::Transport transport;
  sluice::Factory factory;
  factory.mode = data[0];
  sluice::Http1ServerCodec::Options options;
  options.limits.max_head_bytes = 4096;
  options.limits.max_body_bytes = 1 << 16;
  sluice::DownstreamInfo info;
  options.max_requests = data[0] & 0x40 ? 3 : 0;
  auto codec = std::make_unique<sluice::Http1ServerCodec>(context, &transport, &factory, nullptr,
                                                          options, &info);
  sluice::FuzzInput(data + 1, size - 1).ForEachRead([&](std::string_view read) {
    codec->OnData(read.data(), read.size());
    context->RunDeferredNow();
    return !transport.closed;
  });
  if (!transport.closed) {
    if (data[0] & 0x80) {
      codec->OnEof();
    } else {
      codec->OnTransportError();
    }
  }
  context->RunDeferredNow();
  codec.reset();
  context->RunDeferredNow();
  return 0;
}
