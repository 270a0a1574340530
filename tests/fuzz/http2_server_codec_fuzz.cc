// Fuzzes the downstream HTTP/2 codec with raw frame input after the connection preface:
// nghttp2's parser plus everything sluice does around it (streams, limits, flow control,
// resets, trailers), with a handler whose behaviour the input chooses. Invariants: no crash,
// no sanitizer report, no leak, and nothing is written after the transport closed.
#include <uv.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "proxy/http/http2_server_codec.h"
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
  void OnRequestHead(RequestHeadPtr) override {
    if (mode_ % 5 == 0) Respond();  // answer before the body
    if (mode_ % 5 == 4) stream_->SendContinue();
  }
  void OnRequestBody(std::string_view) override {
    if (mode_ % 5 == 1 && stream_) stream_->PauseRequestBody();
  }
  void OnRequestEnd() override {
    if (mode_ % 5 == 1 && stream_) stream_->ResumeRequestBody();
    if (mode_ % 5 == 2) Respond();
    if (mode_ % 5 == 3 && stream_) stream_->Reset();
  }
  void OnDownstreamDrained() override {}
  void OnStreamReset(StreamResetReason) override { stream_ = nullptr; }

 private:
  void Respond() {
    if (!stream_) return;
    ResponseHeadPtr head = MakeResponseHead();
    head->status = 200;
    head->headers.Add("X-Test", "1");
    head->framing = (mode_ & 16) ? BodyFraming::kChunked : BodyFraming::kContentLength;
    head->content_length = 2;
    stream_->SendResponseHead(*head, false);
    if (mode_ & 32) {
      stream_->SendResponseBody("ok", false);
      HeaderMap trailers;
      trailers.Add("grpc-status", "0");
      stream_->SendResponseTrailers(trailers);
    } else {
      stream_->SendResponseBody("ok", true);
    }
  }
  ServerStream* stream_;
  uint8_t mode_;
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
  sluice::Http2ServerCodec::Options options;
  options.limits.max_head_bytes = 4096;
  options.limits.max_body_bytes = 1 << 16;
  options.http2.max_early_resets = 20;
  options.http2.max_control_frames = 50;
  sluice::DownstreamInfo info;
  auto codec = std::make_unique<sluice::Http2ServerCodec>(context, &transport, &factory, nullptr,
                                                          options, &info);
  // The preface comes first unless the input says otherwise: past it is where the work is.
  if (!(data[0] & 0x80)) {
    codec->OnData(sluice::kHttp2Preface.data(), sluice::kHttp2Preface.size());
  }
  sluice::FuzzInput(data + 1, size - 1).ForEachRead([&](std::string_view read) {
    codec->OnData(read.data(), read.size());
    context->RunDeferredNow();
    return !transport.closed;
  });
  if (!transport.closed) {
    if (data[0] & 0x40) {
      codec->OnEof();
    } else {
      codec->Drain();
    }
  }
  context->RunDeferredNow();
  codec.reset();
  context->RunDeferredNow();
  return 0;
}
