#include "proxy/control/scale_hook.h"

#include <signal.h>
#include <stdlib.h>
#include <uv.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

ScaleHookCall Call() {
  ScaleHookCall call;
  call.plan_id = 3;
  call.region = "us-east-1";
  call.saviors = {{"eu-west-1", 60}, {"us-west-2", 40}};
  call.predictions = {{"eu-west-1", 5000, 1800, 3900, 0.78}, {"us-west-2", 4000, 1000, 2400, 0.6}};
  return call;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Whether `pid` is a process that still runs (a zombie waiting for its parent does not).
bool ProcessRuns(int pid) {
  std::string stat = ReadFile(absl::StrFormat("/proc/%d/stat", pid));
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

TEST(ScaleHookJsonTest, SaysWhatTheHookIsToldInTheDocumentedShape) {
  nlohmann::json doc = nlohmann::json::parse(ScaleHookJson(Call()));
  EXPECT_EQ(doc["plan"], 3);
  EXPECT_EQ(doc["region"], "us-east-1");
  EXPECT_EQ(doc["saviors"], nlohmann::json({{"eu-west-1", 60}, {"us-west-2", 40}}));
  ASSERT_EQ(doc["predictions"].size(), 2u);
  EXPECT_EQ(doc["predictions"][0]["region"], "eu-west-1");
  EXPECT_EQ(doc["predictions"][0]["capacity_rps"], 5000);
  EXPECT_EQ(doc["predictions"][0]["load_rps"], 1800);
  EXPECT_EQ(doc["predictions"][0]["predicted_rps"], 3900);
  EXPECT_DOUBLE_EQ(doc["predictions"][0]["predicted_utilization"].get<double>(), 0.78);
  EXPECT_EQ(ScaleHookSaviorList(Call()), "eu-west-1=60,us-west-2=40");
  // The keys in the order the documentation shows them.
  EXPECT_EQ(ScaleHookJson(Call()).rfind(R"({"plan":3,"region":"us-east-1","saviors":{)", 0), 0u);
}

class ScaleHookExecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/sluice-hook-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A hook that runs `script` with /bin/sh (argv, no shell of sluice's own).
  ScaleHookConfig Script(const std::string& script, absl::Duration timeout = absl::Seconds(10)) {
    ScaleHookConfig config;
    config.exec = {"/bin/sh", "-c", script};
    config.timeout = timeout;
    return config;
  }

  // Runs the hook to its report; fails the test if there is none in time.
  ScaleHookResult RunToEnd(ScaleHookRunner* runner, int timeout_ms = 10000) {
    std::optional<ScaleHookResult> result;
    int calls = 0;
    runner->Run(Call(), [&](ScaleHookResult r) {
      ++calls;
      result = std::move(r);
    });
    EXPECT_EQ(calls, 0) << "reported from inside Run()";
    EXPECT_TRUE(runner->running());
    EXPECT_TRUE(loop_.RunUntil([&] { return result.has_value(); }, timeout_ms));
    EXPECT_FALSE(runner->running());
    // Exactly once: nothing more comes while the loop runs on.
    loop_.RunUntil([] { return false; }, 20);
    EXPECT_EQ(calls, 1);
    return result.value_or(ScaleHookResult{});
  }

  int ReadPid(const std::string& name) {
    int pid = 0;
    std::istringstream(ReadFile(dir_ + "/" + name)) >> pid;
    return pid;
  }

  TestLoop loop_;
  std::string dir_;
};

TEST_F(ScaleHookExecTest, SuccessGetsTheCallOnStdinAndInItsEnvironment) {
  ScaleHookRunner runner(loop_.context(),
                         Script("cat > " + dir_ +
                                "/call.json; echo \"plan=$SLUICE_PLAN region=$SLUICE_REGION "
                                "saviors=$SLUICE_SAVIORS\"; echo scaled >&2"));
  ScaleHookResult result = RunToEnd(&runner);
  EXPECT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.error, "");
  EXPECT_EQ(result.output,
            "plan=3 region=us-east-1 saviors=eu-west-1=60,us-west-2=40\n"
            "scaled\n");
  EXPECT_FALSE(result.output_truncated);
  EXPECT_EQ(ReadFile(dir_ + "/call.json"), ScaleHookJson(Call()));
}

TEST_F(ScaleHookExecTest, ANonZeroExitIsAnErrorWithTheOutput) {
  ScaleHookRunner runner(loop_.context(), Script("echo 'quota exceeded' >&2; exit 3"));
  ScaleHookResult result = RunToEnd(&runner);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.error, "exited with status 3");
  EXPECT_EQ(result.output, "quota exceeded\n");
}

TEST_F(ScaleHookExecTest, AHookThatCannotStartSaysWhy) {
  ScaleHookConfig config;
  config.exec = {dir_ + "/no-such-hook", "--fast"};
  ScaleHookRunner runner(loop_.context(), config);
  ScaleHookResult result = RunToEnd(&runner);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.error, "cannot start " + dir_ + "/no-such-hook: no such file or directory");

  // Not executable.
  std::ofstream(dir_ + "/plain") << "#!/bin/sh\nexit 0\n";
  config.exec = {dir_ + "/plain"};
  ScaleHookRunner plain(loop_.context(), config);
  result = RunToEnd(&plain);
  EXPECT_EQ(result.error, "cannot start " + dir_ + "/plain: permission denied");
}

TEST_F(ScaleHookExecTest, ATimeoutKillsTheWholeProcessGroup) {
  // The hook leaves a child behind and waits for it: both must go.
  ScaleHookRunner runner(loop_.context(),
                         Script("sleep 1000 & echo $! > " + dir_ + "/child.pid; echo $$ > " + dir_ +
                                    "/hook.pid; echo waiting; wait",
                                absl::Milliseconds(300)));
  ScaleHookResult result = RunToEnd(&runner);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.error, "timed out after 300ms");
  EXPECT_EQ(result.output, "waiting\n");
  const int hook = ReadPid("hook.pid"), child = ReadPid("child.pid");
  ASSERT_GT(hook, 0);
  ASSERT_GT(child, 0);
  // The hook itself was reaped by the runner before it reported.
  EXPECT_EQ(::kill(hook, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  // The child it left got the group's signal (reaping it is its new parent's business).
  EXPECT_TRUE(loop_.RunUntil([&] { return !ProcessRuns(child); }, 5000)) << child;
}

TEST_F(ScaleHookExecTest, AHookThatIgnoresSigtermIsKilledAfterTheGrace) {
  ScaleHookRunner runner(loop_.context(), Script("trap '' TERM; sleep 1000 & echo $! > " + dir_ +
                                                     "/child.pid; while :; do wait; done",
                                                 absl::Milliseconds(200)));
  runner.set_grace_for_testing(absl::Milliseconds(200));
  ScaleHookResult result = RunToEnd(&runner);
  EXPECT_EQ(result.error, "timed out after 200ms");
  const int child = ReadPid("child.pid");
  ASSERT_GT(child, 0);
  EXPECT_TRUE(loop_.RunUntil([&] { return !ProcessRuns(child); }, 5000)) << child;
}

TEST_F(ScaleHookExecTest, OutputKeepsItsLast16KiB) {
  ScaleHookRunner runner(loop_.context(),
                         Script("head -c 100000 /dev/zero | tr '\\000' a; echo; echo END"));
  ScaleHookResult result = RunToEnd(&runner);
  EXPECT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.output.size(), ScaleHookRunner::kMaxOutput);
  EXPECT_TRUE(result.output_truncated);
  EXPECT_EQ(result.output.substr(result.output.size() - 5), "\nEND\n");
  EXPECT_EQ(result.output.find_first_not_of("a\nEND"), std::string::npos);
}

TEST_F(ScaleHookExecTest, OutputIsValidUtf8) {
  ScaleHookRunner runner(loop_.context(), Script("printf '\\377ok \\303\\251t\\303\\251\\n'"));
  ScaleHookResult result = RunToEnd(&runner);
  EXPECT_EQ(result.output, "?ok \xc3\xa9t\xc3\xa9\n");
}

TEST_F(ScaleHookExecTest, CancelKillsTheHookAndNothingIsReported) {
  ScaleHookRunner runner(loop_.context(),
                         Script("echo $$ > " + dir_ + "/hook.pid; exec sleep 1000"));
  runner.set_grace_for_testing(absl::Milliseconds(200));
  bool reported = false;
  runner.Run(Call(), [&](ScaleHookResult) { reported = true; });
  ASSERT_TRUE(loop_.RunUntil([&] { return ReadPid("hook.pid") > 0; }));
  const int hook = ReadPid("hook.pid");
  runner.Cancel();
  EXPECT_FALSE(runner.running());
  // Reaped by the loop (the handle lives until then): no zombie, no report.
  EXPECT_TRUE(loop_.RunUntil([&] { return ::kill(hook, 0) == -1 && errno == ESRCH; }));
  EXPECT_FALSE(reported);

  // The runner may run again.
  runner.Run(Call(), [&](ScaleHookResult) { reported = true; });
  EXPECT_TRUE(runner.running());
  EXPECT_TRUE(
      loop_.RunUntil([&] { return ReadPid("hook.pid") > 0 && ReadPid("hook.pid") != hook; }));
}

TEST_F(ScaleHookExecTest, DestroyingARunningRunnerKillsTheHook) {
  auto runner = std::make_unique<ScaleHookRunner>(
      loop_.context(), Script("echo $$ > " + dir_ + "/hook.pid; exec sleep 1000"));
  bool reported = false;
  runner->Run(Call(), [&](ScaleHookResult) { reported = true; });
  ASSERT_TRUE(loop_.RunUntil([&] { return ReadPid("hook.pid") > 0; }));
  const int hook = ReadPid("hook.pid");
  runner.reset();
  EXPECT_TRUE(loop_.RunUntil([&] { return ::kill(hook, 0) == -1 && errno == ESRCH; }));
  EXPECT_FALSE(reported);
}

TEST_F(ScaleHookExecTest, OneHookAtATime) {
  ScaleHookRunner runner(loop_.context(), Script("read line; echo first"));
  std::optional<ScaleHookResult> first, second;
  runner.Run(Call(), [&](ScaleHookResult r) { first = std::move(r); });
  runner.Run(Call(), [&](ScaleHookResult r) { second = std::move(r); });
  EXPECT_FALSE(second.has_value());
  ASSERT_TRUE(loop_.RunUntil([&] { return first && second; }));
  EXPECT_EQ(second->error, "a scale hook is already running");
  EXPECT_TRUE(first->ok) << first->error;
  EXPECT_EQ(first->output, "first\n");
}

// A webhook for the tests: answers each request (once its body is in) with `status` and
// `body`, or never when `status` is 0; keeps what it was sent.
class HookOrigin {
 public:
  HookOrigin(uv_loop_t* loop, int status, std::string body)
      : server_(new uv_tcp_t), status_(status), body_(std::move(body)) {
    uv_tcp_init(loop, server_);
    server_->data = this;
    SocketAddress listen = *SocketAddress::Parse("127.0.0.1:0");
    uv_tcp_bind(server_, listen.sockaddr_ptr(), 0);
    uv_listen(reinterpret_cast<uv_stream_t*>(server_), 16, &HookOrigin::OnConnection);
    sockaddr_storage bound;
    int length = sizeof(bound);
    uv_tcp_getsockname(server_, reinterpret_cast<sockaddr*>(&bound), &length);
    port_ = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&bound)).port();
  }
  // The handles go in their close callbacks, when the loop next runs.
  ~HookOrigin() {
    for (uv_tcp_t* h : {server_, peer_}) {
      if (h)
        uv_close(reinterpret_cast<uv_handle_t*>(h),
                 [](uv_handle_t* handle) { delete reinterpret_cast<uv_tcp_t*>(handle); });
    }
  }
  int port() const { return port_; }
  const std::string& request() const { return request_; }

 private:
  static void OnConnection(uv_stream_t* server, int status) {
    auto* self = static_cast<HookOrigin*>(server->data);
    if (status != 0 || self->peer_) return;
    self->peer_ = new uv_tcp_t;
    uv_tcp_init(server->loop, self->peer_);
    self->peer_->data = self;
    uv_accept(server, reinterpret_cast<uv_stream_t*>(self->peer_));
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(self->peer_),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* origin = static_cast<HookOrigin*>(h->data);
          *buf = uv_buf_init(origin->buffer_, sizeof(origin->buffer_));
        },
        [](uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
          if (n > 0) static_cast<HookOrigin*>(stream->data)->OnData(buf->base, n);
        });
  }

  void OnData(const char* data, ssize_t n) {
    request_.append(data, static_cast<size_t>(n));
    size_t end = request_.find("\r\n\r\n");
    size_t length_at = request_.find("Content-Length: ");
    if (end == std::string::npos || length_at == std::string::npos || status_ == 0) return;
    size_t length = std::stoul(request_.substr(length_at + 16));
    if (request_.size() < end + 4 + length || answered_) return;
    answered_ = true;
    reply_ =
        absl::StrFormat("HTTP/1.1 %d Whatever\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                        status_, body_.size(), body_);
    uv_buf_t out = uv_buf_init(reply_.data(), static_cast<unsigned>(reply_.size()));
    uv_try_write(reinterpret_cast<uv_stream_t*>(peer_), &out, 1);
  }

  uv_tcp_t* server_;
  uv_tcp_t* peer_ = nullptr;
  int port_ = 0;
  int status_;
  std::string body_;
  std::string request_;
  std::string reply_;
  bool answered_ = false;
  char buffer_[4096];
};

class ScaleHookWebhookTest : public ScaleHookExecTest {
 protected:
  ScaleHookConfig Webhook(int port, absl::Duration timeout = absl::Seconds(10)) {
    ScaleHookConfig config;
    config.url = *ParseHttpUrl(absl::StrFormat("http://127.0.0.1:%d/scale?fast=1", port));
    config.headers = {{"Authorization", "Bearer hook-token"}};
    config.timeout = timeout;
    return config;
  }
};

TEST_F(ScaleHookWebhookTest, A2xxIsSuccessWithTheBodyAsOutput) {
  HookOrigin origin(loop_.loop(), 202, "scaling eu-west-1 by 4 nodes");
  ScaleHookRunner runner(loop_.context(), Webhook(origin.port()));
  ScaleHookResult result = RunToEnd(&runner);
  EXPECT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.output, "scaling eu-west-1 by 4 nodes");
  const std::string& request = origin.request();
  EXPECT_EQ(request.rfind("POST /scale?fast=1 HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_NE(request.find("\r\nContent-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(request.find("\r\nAuthorization: Bearer hook-token\r\n"), std::string::npos);
  EXPECT_EQ(request.substr(request.find("\r\n\r\n") + 4), ScaleHookJson(Call()));
}

TEST_F(ScaleHookWebhookTest, AnotherStatusIsAnErrorWithTheBody) {
  HookOrigin origin(loop_.loop(), 500, "no capacity left");
  ScaleHookRunner runner(loop_.context(), Webhook(origin.port()));
  ScaleHookResult result = RunToEnd(&runner);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.error, "HTTP 500");
  EXPECT_EQ(result.output, "no capacity left");
}

TEST_F(ScaleHookWebhookTest, ABigBodyKeepsItsTail) {
  HookOrigin origin(loop_.loop(), 200, std::string(40000, 'x') + "END");
  ScaleHookRunner runner(loop_.context(), Webhook(origin.port()));
  ScaleHookResult result = RunToEnd(&runner);
  EXPECT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.output.size(), ScaleHookRunner::kMaxOutput);
  EXPECT_TRUE(result.output_truncated);
  EXPECT_EQ(result.output.substr(result.output.size() - 4), "xEND");
}

TEST_F(ScaleHookWebhookTest, ConnectionRefusedSaysWhere) {
  // A port that was free a moment ago.
  int port = 0;
  {
    HookOrigin closed(loop_.loop(), 200, "");
    port = closed.port();
  }
  loop_.RunUntil([] { return false; }, 10);
  ScaleHookRunner runner(loop_.context(), Webhook(port));
  ScaleHookResult result = RunToEnd(&runner);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.error,
            absl::StrFormat("POST http://127.0.0.1:%d/scale?fast=1: connection refused", port));
}

TEST_F(ScaleHookWebhookTest, AWebhookThatNeverAnswersTimesOut) {
  HookOrigin origin(loop_.loop(), 0, "");
  ScaleHookRunner runner(loop_.context(), Webhook(origin.port(), absl::Milliseconds(300)));
  ScaleHookResult result = RunToEnd(&runner);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.error, "timed out after 300ms");
  EXPECT_NE(origin.request().find("POST /scale"), std::string::npos);
}

}  // namespace
}  // namespace sluice
