#include "proxy/control/steering_control.h"

#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "steering/state_file.h"

namespace sluice {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class SteeringControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/sluice-control-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    uv_loop_init(&loop_);
    config_.steering.enabled = true;
    SteeringSpec& spec = config_.steering.spec;
    spec.local_region = "us-east-1";
    for (const char* name : {"us-east-1", "eu-west-1"}) {
      RegionSpec r;
      r.name = name;
      spec.regions.push_back(r);
    }
    config_.controller.state_file = dir_ + "/state.json";
    config_.controller.audit_log = dir_ + "/audit.jsonl";
  }
  void TearDown() override {
    uv_run(&loop_, UV_RUN_NOWAIT);
    uv_loop_close(&loop_);
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<SteeringControl> Make() {
    return std::make_unique<SteeringControl>(
        &loop_, [this](SteeringTablePtr t) { published_.push_back(std::move(t)); });
  }
  // Without a fleet a change is answered at once.
  static absl::Status SetRegion(SteeringControl* c, const RegionChange& change) {
    int calls = 0;
    absl::Status out;
    c->SetRegion(change, "ops", [&](const absl::Status& s) {
      ++calls;
      out = s;
    });
    EXPECT_EQ(calls, 1);
    return out;
  }
  void Close(std::unique_ptr<SteeringControl> c) {
    c->Stop();
    uv_run(&loop_, UV_RUN_NOWAIT);
  }

  std::string dir_;
  uv_loop_t loop_;
  Config config_;
  std::vector<SteeringTablePtr> published_;
};

TEST_F(SteeringControlTest, EveryChangeIsSavedAuditedAndSurvivesARestart) {
  auto control = Make();
  ASSERT_TRUE(control->Start(config_).ok());
  // The first start writes the file, so an unwritable one shows at once.
  ASSERT_TRUE(DecodeControllerState(Read(config_.controller.state_file)).ok());
  RegionChange change;
  change.region = "us-east-1";
  change.has_fraction = true;
  change.evacuated_bp = 2500;
  change.has_saviors = true;
  change.saviors = {{"eu-west-1", 100}};
  ASSERT_TRUE(SetRegion(control.get(), change).ok());
  ASSERT_EQ(published_.size(), 1u);
  auto saved = DecodeControllerState(Read(config_.controller.state_file));
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->version, 2u);
  for (const RegionSpec& r : saved->regions) {
    EXPECT_EQ(r.evacuated_bp, r.name == "us-east-1" ? 2500u : 0u) << r.name;
  }
  std::string audit = Read(config_.controller.audit_log);
  EXPECT_NE(audit.find("\"actor\":\"ops\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"version_before\":1"), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"version_after\":2"), std::string::npos) << audit;
  Close(std::move(control));

  auto restarted = Make();
  ASSERT_TRUE(restarted->Start(config_).ok());
  EXPECT_EQ(restarted->table()->version(), 2u);
  EXPECT_EQ(restarted->table()->region(0).evacuated_bp, 2500u);
  Close(std::move(restarted));
}

TEST_F(SteeringControlTest, ADamagedStateFileStopsTheStartAndIsLeftAsItIs) {
  std::ofstream(config_.controller.state_file) << "{\"format\": \"sluice-steering-state/1\", \"ver";
  std::string before = Read(config_.controller.state_file);
  auto control = Make();
  absl::Status s = control->Start(config_);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(config_.controller.state_file), std::string::npos) << s;
  EXPECT_NE(s.message().find("damaged"), std::string::npos) << s;
  EXPECT_EQ(Read(config_.controller.state_file), before);
  Close(std::move(control));
}

TEST_F(SteeringControlTest, AChangeThatCannotBeSavedIsNotMade) {
  config_.controller.state_file = dir_ + "/sub/state.json";
  std::filesystem::create_directories(dir_ + "/sub");
  auto control = Make();
  ASSERT_TRUE(control->Start(config_).ok());
  // The state's directory goes away (as a full disk or a lost mount would fail the write; a
  // file in its place stops even root).
  std::filesystem::remove_all(dir_ + "/sub");
  std::ofstream(dir_ + "/sub") << "not a directory\n";
  RegionChange change;
  change.region = "us-east-1";
  change.has_fraction = true;
  change.evacuated_bp = 5000;
  change.has_saviors = true;
  change.saviors = {{"eu-west-1", 100}};
  absl::Status s = SetRegion(control.get(), change);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(control->table()->version(), 1u);
  EXPECT_TRUE(published_.empty());
  Close(std::move(control));
}

TEST(WriteFileAtomicallyTest, ReplacesTheWholeFile) {
  std::string pattern = ::testing::TempDir() + "/sluice-atomic-XXXXXX";
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  std::string path = pattern + "/f";
  ASSERT_TRUE(WriteFileAtomically(path, "first version, rather long\n").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "second\n").ok());
  EXPECT_EQ(Read(path), "second\n");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(pattern),
                          std::filesystem::directory_iterator()),
            1);  // no temporary file left behind
  EXPECT_FALSE(WriteFileAtomically(pattern + "/no/such/dir/f", "x").ok());
  std::filesystem::remove_all(pattern);
}

TEST(WriteFileAtomicallyTest, APlantedLinkIsNeverFollowed) {
  std::string pattern = ::testing::TempDir() + "/sluice-atomic-XXXXXX";
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  std::string victim = pattern + "/victim";
  { std::ofstream(victim) << "precious\n"; }
  // The names an older sluice used for its temporary file, pointing at another file.
  std::string path = pattern + "/state.json";
  for (int pid = 1; pid < 64; ++pid) {
    std::filesystem::create_symlink(victim, path + ".tmp." + std::to_string(pid));
  }
  std::filesystem::create_symlink(victim, path + ".tmp." + std::to_string(getpid()));
  ASSERT_TRUE(WriteFileAtomically(path, "state\n").ok());
  EXPECT_EQ(Read(victim), "precious\n");
  EXPECT_EQ(Read(path), "state\n");
  EXPECT_FALSE(std::filesystem::is_symlink(path));
  std::filesystem::remove_all(pattern);
}

}  // namespace
}  // namespace sluice
